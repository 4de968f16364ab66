package bootstrap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"sigs.k8s.io/yaml"

	// Every typed_config the local stack understands must be resolvable by
	// protojson, so its package is linked in here. Types that are not linked
	// in are reported by walker.anyValue with a devproxy-specific message.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	_ "google.golang.org/protobuf/types/known/structpb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
)

// decode turns YAML (or JSON) into a validated Bootstrap. Before protojson
// sees the document, a walk over it with the message descriptors names every
// unknown field and every typed_config type devproxy cannot resolve by its
// field path, which protojson's own errors do not.
func decode(data []byte) (*bootstrapv3.Bootstrap, *problems) {
	errs := &problems{}
	if len(bytes.TrimSpace(data)) == 0 {
		errs.addf("", "the file is empty: it must hold an Envoy v3 Bootstrap (admin, static_resources)")
		return nil, errs
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		errs.addf("", "not valid YAML: %v", err)
		return nil, errs
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		errs.addf("", "not valid YAML: %v", err)
		return nil, errs
	}
	root, ok := tree.(map[string]any)
	if !ok {
		errs.addf("", "must be a mapping holding an Envoy v3 Bootstrap (admin, static_resources), got %s", jsonKind(tree))
		return nil, errs
	}
	w := walker{errs: errs}
	w.message(root, (&bootstrapv3.Bootstrap{}).ProtoReflect().Descriptor(), "", "")
	if errs.len() > 0 {
		return nil, errs
	}
	bs := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(js, bs); err != nil {
		errs.addf("", "does not decode as an Envoy v3 Bootstrap: %s", cleanProtoJSON(err))
		return nil, errs
	}
	addValidation(errs, "", bs.ValidateAll())
	return bs, errs
}

type walker struct{ errs *problems }

// message checks the keys of obj against md. container is the field (or
// list) name obj was found under; it gives typed_config errors their wording.
func (w walker) message(obj map[string]any, md protoreflect.MessageDescriptor, path, container string) {
	if md.FullName() == "google.protobuf.Any" {
		w.anyValue(obj, path, container)
		return
	}
	if md.FullName().Parent() == "google.protobuf" {
		return // well-known types have their own JSON forms; protojson checks them
	}
	fields := md.Fields()
	for _, key := range sortedKeys(obj) {
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(key))
		}
		if fd == nil {
			w.errs.addf(joinPath(path, key), "unknown field in %s%s; check the spelling against Envoy's v3 API reference",
				md.FullName(), didYouMean(key, fields))
			continue
		}
		v := obj[key]
		if v == nil {
			continue
		}
		fpath := joinPath(path, string(fd.Name()))
		switch {
		case fd.IsMap():
			m, ok := v.(map[string]any)
			if !ok {
				w.errs.addf(fpath, "wants a mapping, got %s", jsonKind(v))
				continue
			}
			if fd.MapValue().Message() == nil {
				for _, k := range sortedKeys(m) {
					w.scalar(m[k], fd.MapValue(), fmt.Sprintf("%s[%q]", fpath, k))
				}
				continue
			}
			for _, k := range sortedKeys(m) {
				if sub, ok := m[k].(map[string]any); ok {
					w.message(sub, fd.MapValue().Message(), fmt.Sprintf("%s[%q]", fpath, k), string(fd.Name()))
				}
			}
		case fd.IsList():
			list, ok := v.([]any)
			if !ok {
				w.errs.addf(fpath, "wants a list, got %s", jsonKind(v))
				continue
			}
			if fd.Message() == nil {
				for i, el := range list {
					w.scalar(el, fd, fmt.Sprintf("%s[%d]", fpath, i))
				}
				continue
			}
			for i, el := range list {
				if sub, ok := el.(map[string]any); ok {
					w.message(sub, fd.Message(), fmt.Sprintf("%s[%d]", fpath, i), string(fd.Name()))
				}
			}
		case fd.Message() == nil:
			w.scalar(v, fd, fpath)
		case wrapperTypes[fd.Message().FullName()]:
			w.scalar(v, fd.Message().Fields().ByName("value"), fpath)
		case fd.Message().FullName().Parent() == "google.protobuf" && fd.Message().FullName() != "google.protobuf.Any":
			// Other well-known types (durations, Struct) have their own JSON
			// forms; protojson checks them.
		default:
			if sub, ok := v.(map[string]any); !ok {
				w.errs.addf(fpath, "wants a mapping (%s), got %s", fd.Message().Name(), jsonKind(v))
			} else {
				if fd.Message().FullName() == "google.protobuf.Any" {
					// An Any's wording depends on what holds it: the list an
					// http filter is in, and the filter's name.
					w.anyValue(sub, fpath, container+"|"+stringField(obj, "name"))
				} else {
					w.message(sub, fd.Message(), fpath, string(fd.Name()))
				}
			}
		}
	}
}

// scalar checks that a value has the JSON kind protojson accepts for fd, so
// that a wrong value is reported with its path.
func (w walker) scalar(v any, fd protoreflect.FieldDescriptor, path string) {
	if v == nil {
		return
	}
	var want string
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			want = "true or false"
		}
	case protoreflect.StringKind, protoreflect.BytesKind:
		if _, ok := v.(string); !ok {
			want = "a string"
		}
	case protoreflect.EnumKind:
		switch x := v.(type) {
		case string:
			if fd.Enum().Values().ByName(protoreflect.Name(x)) == nil {
				var names []string
				for i := 0; i < fd.Enum().Values().Len(); i++ {
					names = append(names, string(fd.Enum().Values().Get(i).Name()))
				}
				w.errs.addf(path, "%q is not a value of %s (one of: %s)", x, fd.Enum().Name(), strings.Join(names, ", "))
			}
		case json.Number:
		default:
			want = "an enum name"
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
	default: // numbers
		switch x := v.(type) {
		case json.Number:
		case string:
			if _, err := strconv.ParseFloat(x, 64); err != nil {
				want = "a number"
			}
		default:
			want = "a number"
		}
	}
	if want != "" {
		w.errs.addf(path, "wants %s, got %s", want, jsonKindValue(v))
	}
}

func jsonKindValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return jsonKind(v)
}

// anyValue resolves an Any's @type and walks into the value. ctx is
// "container|name" of the object holding the Any.
func (w walker) anyValue(obj map[string]any, path, ctx string) {
	url, _ := obj["@type"].(string)
	if url == "" {
		w.errs.addf(path, `"@type" is missing: a typed_config names its type, e.g. "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router`)
		return
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(url)
	if err != nil {
		w.unknownType(path, ctx, url)
		return
	}
	md := mt.Descriptor()
	if md.FullName().Parent() == "google.protobuf" {
		return
	}
	rest := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "@type" {
			rest[k] = v
		}
	}
	w.message(rest, md, path, "")
}

func (w walker) unknownType(path, ctx, url string) {
	container, name, _ := strings.Cut(ctx, "|")
	parent := strings.TrimSuffix(path, ".typed_config")
	typeName := url[strings.LastIndex(url, "/")+1:]
	switch container {
	case "http_filters":
		if want, ok := httpFilterTypes[name]; ok {
			w.errs.addf(path, "type %q is not known (misspelled?): filter %q takes type.googleapis.com/%s", url, name, want)
			return
		}
		w.errs.addf(parent, "filter %q is not supported by devproxy (supported: %s)", filterLabel(name, typeName), strings.Join(sortedNames(httpFilterTypes), ", "))
	case "filters":
		w.errs.addf(parent, "network filter %q is not supported by devproxy (supported: %s)", filterLabel(name, typeName), hcmName)
	case "access_log":
		w.errs.addf(parent, "access logger %q is not supported by devproxy (supported: %s)", filterLabel(name, typeName), strings.Join(sortedNames(accessLogTypes), ", "))
	case "transport_socket":
		w.errs.addf(parent, "%s", tlsUnsupported)
	case "listener_filters":
		w.errs.addf(parent, "listener filters are not supported by devproxy: remove listener_filters (devproxy accepts plain HTTP/1.1 connections only)")
	default:
		w.errs.addf(path, "type %q is not one devproxy knows: it is misspelled, or an Envoy extension outside devproxy's subset", url)
	}
}

const tlsUnsupported = "TLS transport sockets are not supported by devproxy: it serves and dials plain HTTP on loopback; remove transport_socket, or test TLS against a real Envoy"

func filterLabel(name, typeName string) string {
	if name != "" {
		return name
	}
	return typeName
}

// wrapperTypes are written in JSON as the bare value they wrap.
var wrapperTypes = map[protoreflect.FullName]bool{
	"google.protobuf.BoolValue": true, "google.protobuf.StringValue": true, "google.protobuf.BytesValue": true,
	"google.protobuf.Int32Value": true, "google.protobuf.UInt32Value": true, "google.protobuf.Int64Value": true,
	"google.protobuf.UInt64Value": true, "google.protobuf.FloatValue": true, "google.protobuf.DoubleValue": true,
}

var protojsonPos = regexp.MustCompile(`^proto:[\s\x{00a0}]*(\(line \d+:\d+\):[\s\x{00a0}]*)?`)

// cleanProtoJSON drops protojson's prefix and its position, which counts in
// the JSON converted from YAML and so means nothing to the reader.
func cleanProtoJSON(err error) string {
	return protojsonPos.ReplaceAllString(err.Error(), "")
}

// addValidation records Envoy's validation errors (protoc-gen-validate) with
// field paths in the bootstrap's own spelling.
func addValidation(errs *problems, prefix string, err error) {
	if err == nil {
		return
	}
	type multi interface{ AllErrors() []error }
	type fieldErr interface {
		Field() string
		Reason() string
		Cause() error
	}
	switch e := err.(type) {
	case multi:
		for _, sub := range e.AllErrors() {
			addValidation(errs, prefix, sub)
		}
	case fieldErr:
		path := joinPath(prefix, goFieldToProto(e.Field()))
		if c := e.Cause(); c != nil {
			if _, ok := c.(fieldErr); ok {
				addValidation(errs, path, c)
				return
			}
			if _, ok := c.(multi); ok {
				addValidation(errs, path, c)
				return
			}
			errs.addf(path, "Envoy would reject this: %s: %v", e.Reason(), c)
			return
		}
		errs.addf(path, "Envoy would reject this: %s", e.Reason())
	default:
		errs.addf(prefix, "Envoy would reject this: %v", err)
	}
}

// goFieldToProto turns a generated Go field reference such as
// "HttpFilters[1]" into the proto spelling "http_filters[1]".
func goFieldToProto(s string) string {
	name, rest := s, ""
	if i := strings.IndexByte(s, '['); i >= 0 {
		name, rest = s[:i], s[i:]
	}
	var b strings.Builder
	for i, r := range name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r + ('a' - 'A'))
			continue
		}
		b.WriteRune(r)
	}
	return b.String() + rest
}

func joinPath(base, field string) string {
	if base == "" {
		return field
	}
	if field == "" {
		return base
	}
	return base + "." + field
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func stringField(obj map[string]any, key string) string {
	s, _ := obj[key].(string)
	return s
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// didYouMean suggests the field closest to key, if one is close enough to
// be a typo.
func didYouMean(key string, fields protoreflect.FieldDescriptors) string {
	best, bestD := "", 3
	k := strings.ToLower(key)
	for i := 0; i < fields.Len(); i++ {
		name := string(fields.Get(i).Name())
		for _, cand := range []string{name, strings.ToLower(fields.Get(i).JSONName())} {
			if d := editDistance(k, cand); d < bestD {
				best, bestD = name, d
			}
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + strconv.Quote(best) + "?)"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
