package wechat

// The syntax of date and time keyword values (see the rows of kwRules).

import (
	"strings"
	"unicode"
)

// kwCheckDate checks a date value: a point with a date, or start~end where the end has a date, or is a
// time alone after a start with a time.
func kwCheckDate(s string, _ *kwText) string {
	if rule := kwCheckSpaces(s); rule != "" {
		return rule
	}
	start, end, isRange := strings.Cut(s, "~")
	hasDate, hasTime, ok := kwParsePoint(start)
	if ok && hasDate && isRange {
		endDate, _, endOK := kwParsePoint(end)
		ok = endOK && (endDate || hasTime)
	}
	if !ok || !hasDate {
		return "is not a date (2019年10月1日, 2018-01-01, 2018/01, 01-01), optionally with a space and a time HH:MM, or two joined by ~"
	}
	return ""
}

// kwCheckTime checks a time value: a point with a time, or two joined by "~".
func kwCheckTime(s string, _ *kwText) string {
	if rule := kwCheckSpaces(s); rule != "" {
		return rule
	}
	start, end, isRange := strings.Cut(s, "~")
	_, hasTime, ok := kwParsePoint(start)
	if ok && hasTime && isRange {
		_, hasTime, ok = kwParsePoint(end)
	}
	if !ok || !hasTime {
		return "is not a time HH:MM or HH:MM:SS, optionally after a date and a space, or two joined by ~: 15:01, 2019年10月1日 15:01, 15:01~16:00"
	}
	return ""
}

// kwCheckSpaces names the misplaced spaces of a date or time value: it has one space between a date
// and its time, and no other.
func kwCheckSpaces(s string) string {
	switch {
	case strings.HasPrefix(s, " ") || strings.HasSuffix(s, " "):
		return "must not start or end with a space"
	case strings.Contains(s, " ~") || strings.Contains(s, "~ "):
		return "must not have spaces around ~"
	case strings.Contains(s, "  ") || strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && unicode.IsSpace(r) }):
		return "must have one ASCII space between a date and its time"
	}
	return ""
}

// kwParsePoint parses a date, a time, or a date, one space and a time. A second "~" of a range is left
// in its end, where it fails to parse.
func kwParsePoint(s string) (hasDate, hasTime, ok bool) {
	if d, t, found := strings.Cut(s, " "); found {
		return true, true, kwIsDate(d) && kwIsClock(t)
	}
	if kwIsDate(s) {
		return true, false, true
	}
	if kwIsClock(s) {
		return false, true, true
	}
	return false, false, false
}

// kwIsClock reports whether s is HH:MM or HH:MM:SS on a 24-hour clock.
func kwIsClock(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return false
	}
	h, ok := kwNumber2(parts[0], 2)
	if !ok || h > 23 {
		return false
	}
	for _, p := range parts[1:] {
		if v, ok := kwNumber2(p, 2); !ok || v > 59 {
			return false
		}
	}
	return true
}

// kwNumber2 parses one or two ASCII digits, at least min of them.
func kwNumber2(s string, min int) (int, bool) {
	if len(s) < min || len(s) > 2 || kwDigits(s) != len(s) {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		v = v*10 + int(s[i]-'0')
	}
	return v, true
}

// kwIsDate reports whether s is one of the date forms listed in Validate and names a day that exists.
func kwIsDate(s string) bool {
	if strings.Contains(s, "月") {
		return kwIsChineseDate(s)
	}
	sep := strings.IndexAny(s, "-/.")
	if sep < 0 {
		return false
	}
	parts := strings.Split(s, s[sep:sep+1])
	for _, p := range parts {
		if p == "" || kwDigits(p) != len(p) {
			return false
		}
	}
	switch {
	case len(parts) == 3 && len(parts[0]) == 4:
		return kwValidDay(parts[0], parts[1], parts[2])
	case len(parts) == 2 && len(parts[0]) == 4:
		return kwValidDay(parts[0], parts[1], "")
	case len(parts) == 2:
		return kwValidDay("", parts[0], parts[1])
	}
	return false
}

// kwIsChineseDate reports whether s is YYYY年M月D日, YYYY年M月 or M月D日.
func kwIsChineseDate(s string) bool {
	var year, day string
	if y, rest, found := strings.Cut(s, "年"); found {
		year, s = y, rest
	}
	month, rest, found := strings.Cut(s, "月")
	if !found {
		return false
	}
	if rest != "" {
		d, tail, found := strings.Cut(rest, "日")
		if !found || tail != "" {
			return false
		}
		day = d
	}
	if year == "" && day == "" {
		return false
	}
	if year != "" && (len(year) != 4 || kwDigits(year) != 4) {
		return false
	}
	return kwValidDay(year, month, day)
}

// kwValidDay checks a month (one or two digits) and an optional day against an optional four-digit
// year; without a year, February has 29 days.
func kwValidDay(year, month, day string) bool {
	m, ok := kwNumber2(month, 1)
	if !ok || m < 1 || m > 12 {
		return false
	}
	if day == "" {
		return true
	}
	d, ok := kwNumber2(day, 1)
	if !ok || d < 1 {
		return false
	}
	days := [...]int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m-1]
	if m == 2 && year != "" {
		y := 0
		for i := 0; i < len(year); i++ {
			y = y*10 + int(year[i]-'0')
		}
		if y%4 != 0 || (y%100 == 0 && y%400 != 0) {
			days = 28
		}
	}
	return d <= days
}
