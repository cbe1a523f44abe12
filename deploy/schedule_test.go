package deploy_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var rateRe = regexp.MustCompile(`^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$`)

// checkAWSSchedule validates an EventBridge Scheduler expression: rate(N
// unit), unit singular exactly when N is 1, or cron() with six fields of
// which day-of-month or day-of-week is "?".
func checkAWSSchedule(expr string) error {
	if m := rateRe.FindStringSubmatch(expr); m != nil {
		n, _ := strconv.Atoi(m[1])
		if n < 1 || (n == 1) != !strings.HasSuffix(m[2], "s") {
			return fmt.Errorf("%q: rate needs a positive value, with a singular unit for 1 only", expr)
		}
		return nil
	}
	inner, ok := strings.CutPrefix(expr, "cron(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return fmt.Errorf("%q is neither rate(...) nor cron(...)", expr)
	}
	f := strings.Fields(strings.TrimSuffix(inner, ")"))
	if len(f) != 6 {
		return fmt.Errorf("%q: an AWS cron has 6 fields (minutes hours day-of-month month day-of-week year)", expr)
	}
	if (f[2] == "?") == (f[4] == "?") {
		return fmt.Errorf("%q: exactly one of day-of-month and day-of-week must be ?", expr)
	}
	bounds := [][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {1, 7}, {1970, 2199}}
	for i, field := range f {
		if field == "?" && (i == 2 || i == 4) {
			continue
		}
		if err := checkCronField(field, bounds[i][0], bounds[i][1]); err != nil {
			return fmt.Errorf("%q field %d: %v", expr, i+1, err)
		}
	}
	return nil
}

// checkTencentCron validates an SCF timer: seven fields (second minute
// hour day-of-month month day-of-week year).
func checkTencentCron(expr string) error {
	f := strings.Fields(expr)
	if len(f) != 7 {
		return fmt.Errorf("%q: an SCF timer has 7 fields (second minute hour day month week year)", expr)
	}
	bounds := [][2]int{{0, 59}, {0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 6}, {1970, 2099}}
	for i, field := range f {
		if err := checkCronField(field, bounds[i][0], bounds[i][1]); err != nil {
			return fmt.Errorf("%q field %d: %v", expr, i+1, err)
		}
	}
	return nil
}

// checkCronField accepts *, N, A-B, lists of those, and /step after * or a
// value or range, within [lo, hi].
func checkCronField(field string, lo, hi int) error {
	for part := range strings.SplitSeq(field, ",") {
		base, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 || n > hi {
				return fmt.Errorf("bad step %q", step)
			}
		}
		if base == "*" {
			continue
		}
		from, to, isRange := strings.Cut(base, "-")
		if !isRange {
			to = from
		}
		a, errA := strconv.Atoi(from)
		b, errB := strconv.Atoi(to)
		if errA != nil || errB != nil || a < lo || b > hi || a > b {
			return fmt.Errorf("%q is not *, a value or a range within %d-%d", base, lo, hi)
		}
	}
	return nil
}

func TestScheduleValidators(t *testing.T) {
	tests := []struct {
		expr  string
		check func(string) error
		ok    bool
	}{
		{"rate(1 minute)", checkAWSSchedule, true},
		{"rate(5 minutes)", checkAWSSchedule, true},
		{"rate(1 minutes)", checkAWSSchedule, false},
		{"rate(2 minute)", checkAWSSchedule, false},
		{"rate(0 minutes)", checkAWSSchedule, false},
		{"cron(0/5 * * * ? *)", checkAWSSchedule, true},
		{"cron(0 9 ? * 2-6 *)", checkAWSSchedule, true},
		{"cron(0 9 * * * *)", checkAWSSchedule, false},
		{"cron(0 9 * * ?)", checkAWSSchedule, false},
		{"cron(61 9 * * ? *)", checkAWSSchedule, false},
		{"every minute", checkAWSSchedule, false},
		{"0 */1 * * * * *", checkTencentCron, true},
		{"0 0 2 1 * * *", checkTencentCron, true},
		{"*/5 * * * * * *", checkTencentCron, true},
		{"0 30 9 * * 1-5 *", checkTencentCron, true},
		{"0 */1 * * * *", checkTencentCron, false},
		{"0 60 * * * * *", checkTencentCron, false},
		{"0 0 24 * * * *", checkTencentCron, false},
		{"0 0 0 0 * * *", checkTencentCron, false},
		{"0 */0 * * * * *", checkTencentCron, false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			if err := tt.check(tt.expr); (err == nil) != tt.ok {
				t.Errorf("got %v, want valid %v", err, tt.ok)
			}
		})
	}
}
