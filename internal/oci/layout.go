package oci

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// WriteLayout writes img as the only image of a fresh OCI image layout in
// dir, named refName in the index (org.opencontainers.image.ref.name; empty
// for none). A dir that already exists is replaced only when it is an OCI
// image layout or empty, so a mistyped path never deletes anything else.
func WriteLayout(dir string, img v1.Image, refName string) error {
	if err := clearLayoutDir(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating the OCI layout in %s: %w", dir, err)
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{RefNameAnnotation: refName}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("writing the image into %s: %w", dir, err)
	}
	return nil
}

func clearLayoutDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("refusing to replace %s: it exists and is not an OCI image layout (no oci-layout file); choose another directory or remove it yourself", dir)
	}
	return os.RemoveAll(dir)
}

// ReadLayout returns the single image in the OCI image layout at dir.
func ReadLayout(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the OCI layout %s (run `make oci` to build it): %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s/index.json: %w", dir, err)
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("the OCI layout %s holds %d manifests, want exactly 1: rebuild it with `make oci`", dir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("reading the image in %s: %w", dir, err)
	}
	return img, nil
}

// WriteArchive writes the OCI image layout in dir as one tar file (the
// format skopeo calls oci-archive: the layout's files at the archive's
// root). Entries are sorted by name, with mode 0644 (0755 for
// directories), owner 0:0 and the given modification time (zero means the
// Unix epoch), so the same layout always gives the same bytes.
func WriteArchive(file, dir string, mtime time.Time) (err error) {
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	mtime = mtime.UTC().Truncate(time.Second)
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(file)
		}
	}()
	bw := bufio.NewWriter(out)
	tw := tar.NewWriter(bw)
	walkErr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		hdr := &tar.Header{Name: name, ModTime: mtime, Format: tar.FormatUSTAR}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
			return tw.WriteHeader(hdr)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, info.Size()
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		default:
			return fmt.Errorf("%s is neither a file nor a directory; an OCI layout holds only those", p)
		}
	})
	if walkErr != nil {
		return fmt.Errorf("archiving %s: %w", dir, walkErr)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// Summary describes an image for people: its digest, manifest and layer
// media types and its annotations.
func Summary(img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	m, err := img.Manifest()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "manifest %s %s\n", m.MediaType, d)
	fmt.Fprintf(&b, "config   %s %s (%d bytes)\n", m.Config.MediaType, m.Config.Digest, m.Config.Size)
	for _, l := range m.Layers {
		title := ""
		if t := l.Annotations[TitleAnnotation]; t != "" {
			title = " " + t
		}
		fmt.Fprintf(&b, "layer    %s %s (%d bytes)%s\n", l.MediaType, l.Digest, l.Size, title)
	}
	for _, k := range slices.Sorted(maps.Keys(m.Annotations)) {
		fmt.Fprintf(&b, "annotation %s=%s\n", k, m.Annotations[k])
	}
	return b.String(), nil
}
