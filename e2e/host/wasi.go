package host

import (
	"crypto/rand"
	"fmt"
	"sort"
	"time"

	"github.com/tetratelabs/wazero/sys"
)

// WASI errno values.
const (
	errnoSuccess = 0
	errnoBadF    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoNoEnt   = 44
	errnoNoSys   = 52
	errnoNotDir  = 20
	errnoNotSup  = 58
)

const maxRandomGet = 64 * 1024 // Envoy's PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES

var processStart = time.Now()

func errno(s []uint64, e uint32) { s[0] = uint64(e) }

func stdio(fd uint32) bool { return fd == 1 || fd == 2 }

// wasiFuncs is the WASI preview1 subset Envoy implements, with its
// semantics: output goes to the log, there is no file system, poll_oneoff
// reports success with no events (Go's scheduler needs that), the
// environment is vm_config's environment_variables.
var wasiFuncs = map[string]hostFunc{
	"fd_write": sig("iiii", "i", func(v *vm, s []uint64) {
		n, e := wasiWrite(v, u32(s[0]), u32(s[1]), u32(s[2]))
		if e == errnoSuccess && !v.writeU32(u32(s[3]), n) {
			e = errnoFault
		}
		errno(s, e)
	}),
	"fd_pwrite": sig("iiiIi", "i", func(v *vm, s []uint64) {
		if !stdio(u32(s[0])) {
			errno(s, errnoBadF)
			return
		}
		n, e := wasiWrite(v, u32(s[0]), u32(s[1]), u32(s[2]))
		if e == errnoSuccess && !v.writeU32(u32(s[4]), n) {
			e = errnoFault
		}
		errno(s, e)
	}),
	"fd_read":  sig("iiii", "i", func(v *vm, s []uint64) { errno(s, errnoNoSys) }),
	"fd_pread": sig("iiiIi", "i", func(v *vm, s []uint64) { errno(s, errnoNoSys) }),
	"fd_seek":  sig("iIii", "i", func(v *vm, s []uint64) { errno(s, errnoSuccess) }),
	"fd_close": sig("i", "i", func(v *vm, s []uint64) { errno(s, errnoSuccess) }),
	"fd_fdstat_get": sig("ii", "i", func(v *vm, s []uint64) {
		if !stdio(u32(s[0])) {
			errno(s, errnoBadF)
			return
		}
		var st [24]byte
		st[8] = 64 // fs_rights_base = FD_WRITE
		if !v.mem.Write(u32(s[1]), st[:]) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoSuccess)
	}),
	"fd_fdstat_set_flags":   sig("ii", "i", func(v *vm, s []uint64) { errno(s, errnoNoSys) }),
	"fd_fdstat_set_rights":  sig("iII", "i", stdioOnly),
	"fd_advise":             sig("iIIi", "i", func(v *vm, s []uint64) { errno(s, errnoSuccess) }),
	"fd_allocate":           sig("iII", "i", stdioOnly),
	"fd_datasync":           sig("i", "i", stdioOnly),
	"fd_filestat_set_size":  sig("iI", "i", stdioOnly),
	"fd_filestat_set_times": sig("iIIi", "i", stdioOnly),
	"fd_sync":               sig("i", "i", stdioOnly),
	"fd_filestat_get":       sig("ii", "i", func(v *vm, s []uint64) { errno(s, errnoBadF) }),
	"fd_prestat_get":        sig("ii", "i", func(v *vm, s []uint64) { errno(s, errnoBadF) }),
	"fd_prestat_dir_name":   sig("iii", "i", func(v *vm, s []uint64) { errno(s, errnoNoSys) }),
	"fd_readdir": sig("iiiIi", "i", func(v *vm, s []uint64) {
		if !v.writeU32(u32(s[4]), 0) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoNotDir)
	}),
	"fd_renumber": sig("ii", "i", func(v *vm, s []uint64) {
		if !stdio(u32(s[0])) || !stdio(u32(s[1])) {
			errno(s, errnoBadF)
			return
		}
		errno(s, errnoNotSup)
	}),
	"fd_tell": sig("ii", "i", func(v *vm, s []uint64) {
		if !stdio(u32(s[0])) {
			errno(s, errnoBadF)
			return
		}
		if !v.writeU64(u32(s[1]), 0) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoSuccess)
	}),
	"path_open":               sig("iiiiiIIii", "i", func(v *vm, s []uint64) { errno(s, errnoNoEnt) }),
	"path_create_directory":   sig("iii", "i", notSup),
	"path_filestat_get":       sig("iiiii", "i", notSup),
	"path_filestat_set_times": sig("iiiiIIi", "i", notSup),
	"path_link":               sig("iiiiiii", "i", notSup),
	"path_readlink": sig("iiiiii", "i", func(v *vm, s []uint64) {
		if !v.writeU32(u32(s[5]), 0) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoNotSup)
	}),
	"path_remove_directory": sig("iii", "i", notSup),
	"path_rename":           sig("iiiiii", "i", notSup),
	"path_symlink":          sig("iiiii", "i", notSup),
	"path_unlink_file":      sig("iii", "i", notSup),
	"sock_accept": sig("iii", "i", func(v *vm, s []uint64) {
		if !v.writeU32(u32(s[2]), 0) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoNotSup)
	}),
	"sock_recv": sig("iiiiii", "i", func(v *vm, s []uint64) {
		if !v.writeU32(u32(s[4]), 0) || !v.mem.WriteUint16Le(u32(s[5]), 0) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoNotSup)
	}),
	"sock_send": sig("iiiii", "i", func(v *vm, s []uint64) {
		if !v.writeU32(u32(s[4]), 0) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoNotSup)
	}),
	"sock_shutdown": sig("ii", "i", notSup),
	"environ_sizes_get": sig("ii", "i", func(v *vm, s []uint64) {
		env := environ(v)
		size := 0
		for _, e := range env {
			size += len(e) + 1
		}
		if !v.writeU32(u32(s[0]), uint32(len(env))) || !v.writeU32(u32(s[1]), uint32(size)) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoSuccess)
	}),
	"environ_get": sig("ii", "i", func(v *vm, s []uint64) {
		arr, buf := u32(s[0]), u32(s[1])
		for _, e := range environ(v) {
			if !v.writeU32(arr, buf) || !v.mem.Write(buf, append([]byte(e), 0)) {
				errno(s, errnoFault)
				return
			}
			arr += 4
			buf += uint32(len(e) + 1)
		}
		errno(s, errnoSuccess)
	}),
	"args_sizes_get": sig("ii", "i", func(v *vm, s []uint64) {
		if !v.writeU32(u32(s[0]), 0) || !v.writeU32(u32(s[1]), 0) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoSuccess)
	}),
	"args_get": sig("ii", "i", func(v *vm, s []uint64) { errno(s, errnoSuccess) }),
	"clock_time_get": sig("iIi", "i", func(v *vm, s []uint64) {
		var t uint64
		switch u32(s[0]) {
		case 0:
			t = uint64(time.Now().UnixNano())
		case 1:
			t = uint64(time.Since(processStart).Nanoseconds()) + 1
		default:
			errno(s, errnoNotSup)
			return
		}
		if !v.writeU64(u32(s[2]), t) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoSuccess)
	}),
	"clock_res_get": sig("ii", "i", func(v *vm, s []uint64) {
		if id := u32(s[0]); id != 0 && id != 1 {
			errno(s, errnoNotSup)
			return
		}
		if !v.writeU64(u32(s[1]), 1) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoSuccess)
	}),
	"random_get": sig("ii", "i", func(v *vm, s []uint64) {
		n := u32(s[1])
		if n > maxRandomGet {
			errno(s, errnoInval)
			return
		}
		if n == 0 {
			errno(s, errnoSuccess)
			return
		}
		b := make([]byte, n)
		rand.Read(b)
		if !v.mem.Write(u32(s[0]), b) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoSuccess)
	}),
	"sched_yield": sig("", "i", func(v *vm, s []uint64) { errno(s, errnoSuccess) }),
	"poll_oneoff": sig("iiii", "i", func(v *vm, s []uint64) {
		// No event polling: report zero events, and success, as Envoy ≥ 1.39
		// does. Go's runtime treats an error here as fatal.
		if !v.writeU32(u32(s[3]), 0) {
			errno(s, errnoFault)
			return
		}
		errno(s, errnoSuccess)
	}),
	"proc_exit": sig("i", "", func(v *vm, s []uint64) {
		// Envoy logs and returns; a module that exits is finished either
		// way, so the host ends the call here and the VM is replaced.
		v.w.h.logf(v.w.id, LogError, "wasm", "the module called proc_exit(%d)", u32(s[0]))
		panic(sys.NewExitError(u32(s[0])))
	}),
}

func stdioOnly(v *vm, s []uint64) {
	if !stdio(u32(s[0])) {
		errno(s, errnoBadF)
		return
	}
	errno(s, errnoSuccess)
}

func notSup(v *vm, s []uint64) { errno(s, errnoNotSup) }

func wasiWrite(v *vm, fd, iovs, n uint32) (uint32, uint32) {
	if !stdio(fd) {
		return 0, errnoBadF
	}
	var total uint32
	var out []byte
	for i := uint32(0); i < n; i++ {
		vec, ok := v.read(iovs+i*8, 8)
		if !ok {
			return 0, errnoFault
		}
		ptr, size := le32(vec[0:4]), le32(vec[4:8])
		if size == 0 {
			continue
		}
		b, ok := v.read(ptr, size)
		if !ok {
			return 0, errnoFault
		}
		out = append(out, b...)
		total += size
	}
	v.writeFD(fd, out)
	return total, errnoSuccess
}

func environ(v *vm) []string {
	env := v.w.h.cfg.Plugin.Env
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s=%s", k, env[k]))
	}
	return out
}
