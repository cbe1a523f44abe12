package wechat

// The syntax of date and time keyword values (see the rows of kwRules).

import "strings"

func kwCheckDate(s string, _ *kwText) string {
	if !kwIsDateRange(s) {
		return "is not a date or date range such as 2019年10月1日, 2018-01-01 15:01 or 2018/01/01~2018/01/02"
	}
	return ""
}

func kwCheckTime(s string, _ *kwText) string {
	if !kwIsTimeRange(s) {
		return "is not a 24-hour time or time range such as 15:01, 15:01:05 or 2019年10月1日 15:01~16:00"
	}
	return ""
}

// kwIsDateRange reports whether s is a date value: a point with a date, or start~end where the end has a
// date, or is a time alone after a start with a time.
func kwIsDateRange(s string) bool {
	start, end, isRange := kwSplitRange(s)
	hasDate, hasTime, ok := kwParsePoint(start)
	if !ok || !hasDate {
		return false
	}
	if !isRange {
		return true
	}
	endDate, _, ok := kwParsePoint(end)
	return ok && (endDate || hasTime)
}

// kwIsTimeRange reports whether s is a time value: a point with a time, or two joined by "~".
func kwIsTimeRange(s string) bool {
	start, end, isRange := kwSplitRange(s)
	if _, hasTime, ok := kwParsePoint(start); !ok || !hasTime {
		return false
	}
	if !isRange {
		return true
	}
	_, hasTime, ok := kwParsePoint(end)
	return ok && hasTime
}

// kwSplitRange splits "a ~ b" into its ends, without the spaces around "~"; isRange is false when s has
// no "~". A second "~" stays in end, where it fails to parse.
func kwSplitRange(s string) (start, end string, isRange bool) {
	start, end, isRange = strings.Cut(s, "~")
	if !isRange {
		return s, "", false
	}
	return strings.TrimRight(start, " "), strings.TrimLeft(end, " "), true
}

// kwParsePoint parses a date, a time, or a date followed by a time (after spaces, or right after "日").
func kwParsePoint(s string) (hasDate, hasTime, ok bool) {
	if d, t, found := strings.Cut(s, " "); found {
		t = strings.TrimLeft(t, " ")
		return true, true, kwIsDate(d) && kwIsClock(t)
	}
	if kwIsDate(s) {
		return true, false, true
	}
	if kwIsClock(s) {
		return false, true, true
	}
	if d, t, found := strings.Cut(s, "日"); found && t != "" {
		return true, true, kwIsDate(d+"日") && kwIsClock(t)
	}
	return false, false, false
}

// kwIsClock reports whether s is H:MM or H:MM:SS on a 24-hour clock (hours of one or two digits).
func kwIsClock(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return false
	}
	h, ok := kwNumber2(parts[0], 1)
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
