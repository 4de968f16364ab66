package bootstrap

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// defaultTimeFormat is what %START_TIME% prints without a format: UTC with
// milliseconds, e.g. 2026-04-15T20:17:00.310Z.
const defaultTimeFormat = "%Y-%m-%dT%H:%M:%E3SZ"

// timePiece appends one part of a formatted time.
type timePiece func(b *strings.Builder, t time.Time)

// timeSpecifiers lists the specifiers compileStrftime accepts, for errors.
const timeSpecifiers = "%Y %y %C %m %d %e %j %H %I %M %S %p %a %A %b %h %B %u %w %z %Ez %Z %s %T %F %D %R %n %t %% %f %1f-%9f %E0S-%E9S %E*S"

// compileStrftime compiles the strftime subset Envoy's START_TIME(...)
// accepts in practice: the C specifiers, absl's %E#S / %E*S / %Ez, and
// Envoy's %f / %#f fractional seconds (digits truncated, not rounded).
func compileStrftime(s string) ([]timePiece, error) {
	var out []timePiece
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			l := lit.String()
			out = append(out, func(b *strings.Builder, _ time.Time) { b.WriteString(l) })
			lit.Reset()
		}
	}
	add := func(p timePiece) { flush(); out = append(out, p) }
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			lit.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("time format %q ends with a lone %%: write %%%% for a percent sign", s)
		}
		i++
		c := s[i]
		// %1f .. %9f: that many fractional digits.
		if c >= '1' && c <= '9' && i+1 < len(s) && s[i+1] == 'f' {
			n := int(c - '0')
			i++
			add(func(b *strings.Builder, t time.Time) { b.WriteString(fraction(t, n)) })
			continue
		}
		if c == 'E' {
			if i+1 >= len(s) {
				return nil, fmt.Errorf("time format %q: %%E needs a specifier after it (%s)", s, timeSpecifiers)
			}
			switch {
			case s[i+1] == 'z':
				i++
				add(func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("-07:00")) })
				continue
			case s[i+1] == '*' && i+2 < len(s) && s[i+2] == 'S':
				i += 2
				add(func(b *strings.Builder, t time.Time) {
					b.WriteString(two(t.Second()))
					if f := strings.TrimRight(fraction(t, 9), "0"); f != "" {
						b.WriteString("." + f)
					}
				})
				continue
			case s[i+1] >= '0' && s[i+1] <= '9' && i+2 < len(s) && s[i+2] == 'S':
				n := int(s[i+1] - '0')
				i += 2
				add(func(b *strings.Builder, t time.Time) {
					b.WriteString(two(t.Second()))
					if n > 0 {
						b.WriteString("." + fraction(t, n))
					}
				})
				continue
			}
			return nil, fmt.Errorf("time format %q: %%E%c is not supported (supported: %s)", s, s[i+1], timeSpecifiers)
		}
		var p timePiece
		switch c {
		case '%':
			lit.WriteByte('%')
			continue
		case 'n':
			lit.WriteByte('\n')
			continue
		case 't':
			lit.WriteByte('\t')
			continue
		case 'Y':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(strconv.Itoa(t.Year())) }
		case 'y':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(two(t.Year() % 100)) }
		case 'C':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(two(t.Year() / 100)) }
		case 'm':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(two(int(t.Month()))) }
		case 'd':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(two(t.Day())) }
		case 'e':
			p = func(b *strings.Builder, t time.Time) { fmt.Fprintf(b, "%2d", t.Day()) }
		case 'j':
			p = func(b *strings.Builder, t time.Time) { fmt.Fprintf(b, "%03d", t.YearDay()) }
		case 'H':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(two(t.Hour())) }
		case 'I':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("03")) }
		case 'M':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(two(t.Minute())) }
		case 'S':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(two(t.Second())) }
		case 'p':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("PM")) }
		case 'a':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("Mon")) }
		case 'A':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("Monday")) }
		case 'b', 'h':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("Jan")) }
		case 'B':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("January")) }
		case 'u':
			p = func(b *strings.Builder, t time.Time) {
				d := int(t.Weekday())
				if d == 0 {
					d = 7
				}
				b.WriteString(strconv.Itoa(d))
			}
		case 'w':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(strconv.Itoa(int(t.Weekday()))) }
		case 'z':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("-0700")) }
		case 'Z':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("MST")) }
		case 's':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(strconv.FormatInt(t.Unix(), 10)) }
		case 'f':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(fraction(t, 9)) }
		case 'T':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("15:04:05")) }
		case 'F':
			p = func(b *strings.Builder, t time.Time) {
				fmt.Fprintf(b, "%d-%s-%s", t.Year(), two(int(t.Month())), two(t.Day()))
			}
		case 'D':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("01/02/06")) }
		case 'R':
			p = func(b *strings.Builder, t time.Time) { b.WriteString(t.Format("15:04")) }
		default:
			return nil, fmt.Errorf("time format %q: %%%c is not supported (supported: %s)", s, c, timeSpecifiers)
		}
		add(p)
	}
	flush()
	return out, nil
}

func formatTime(pieces []timePiece, t time.Time) string {
	var b strings.Builder
	for _, p := range pieces {
		p(&b, t)
	}
	return b.String()
}

func two(n int) string {
	if n < 10 && n >= 0 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// fraction returns the first n digits of t's fractional second, truncated.
func fraction(t time.Time, n int) string {
	s := fmt.Sprintf("%09d", t.Nanosecond())
	return s[:n]
}
