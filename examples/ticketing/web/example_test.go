package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"time"

	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/users"
	"esgo.dev/examples/ticketing/web"
)

// The web application over an app on SQLite: a visitor registers, logs in
// and asks who they are. The server is an http.Handler; here it is called
// directly, where a program would give it to an http.Server (see the serve
// command of examples/ticketing).
func Example() {
	ctx := context.Background()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	quiet := slog.New(slog.DiscardHandler)
	a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), PasswordCost: 4, Logger: quiet,
		RelayPollInterval: 10 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := web.New(ctx, web.Config{App: a, DB: store, Events: store, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	call := func(method, path, body, cookie string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "https://tickets.example"+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}

	w := call("POST", "/api/users", `{"email":"ala@example.com","name":"Ala","password":"correct horse battery"}`, "")
	fmt.Println("register:", w.Code)
	w = call("POST", "/api/session", `{"email":"ala@example.com","password":"correct horse battery"}`, "")
	fmt.Println("log in:", w.Code)
	cookie := strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0]
	w = call("GET", "/api/session", "", cookie)
	fmt.Println("who am I:", w.Code, strings.Contains(w.Body.String(), `"role":"`+string(users.Customer)+`"`))
	w = call("GET", "/api/session", "", "")
	fmt.Println("without the cookie:", w.Code)
	// Output:
	// register: 201
	// log in: 200
	// who am I: 200 true
	// without the cookie: 401
}
