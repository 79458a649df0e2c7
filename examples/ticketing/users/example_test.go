package users_test

import (
	"fmt"

	"esgo.dev/examples/ticketing/users"
)

// Addresses are compared in their normalised form.
func ExampleNormaliseEmail() {
	e, err := users.NormaliseEmail("  Ala@Example.COM ")
	fmt.Println(e, err)
	_, err = users.NormaliseEmail("not an address")
	fmt.Println(err)
	// Output:
	// ala@example.com <nil>
	// users: invalid e-mail address: "not an address"
}
