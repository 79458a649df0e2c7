package web

import "testing"

func TestSlugMakesATicketTypeNamePartOfAnID(t *testing.T) {
	for name, want := range map[string]string{"VIP": "vip", "Early bird": "early-bird", " Płyta  (stojąca) ": "płyta-stojąca", "A+B": "a-b"} {
		if got := slug(name); got != want {
			t.Errorf("slug(%q) = %q, want %q", name, got, want)
		}
	}
}
