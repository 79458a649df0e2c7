package sqlite

import (
	"testing"
	"time"
)

// parseTime agrees with time.Parse(timeLayout, ...).
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2026-11-30T03:29:56.123456789Z", "2024-02-29T23:59:59.999999999Z", "2023-02-29T00:00:00.000000000Z",
		"2026-13-01T00:00:00.000000000Z", "2026-00-10T00:00:00.000000000Z", "2026-01-10T24:00:00.000000000Z",
		"2026-01-10T00:60:00.000000000Z", "2026-01-10T00:00:60.000000000Z", "0000-01-01T00:00:00.000000000Z",
		"2026-01-1a T00:00:00.00000000Z", "2026-01-10T00:00:00.000000000", "", "2026-01-10T00:00:00Z",
		"+026-01-10T00:00:00.000000000Z", "2026-04-31T00:00:00.000000000Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		want, wantErr := time.Parse(timeLayout, v)
		got, gotErr := parseTime(v)
		if (gotErr == nil) != (wantErr == nil) || !got.Equal(want) || got.Location() != want.Location() {
			t.Fatalf("parseTime(%q) = %v, %v; time.Parse: %v, %v", v, got, gotErr, want, wantErr)
		}
	})
}
