package web

import (
	"net/http"

	"esgo.dev/examples/ticketing/users"
)

// Users are managed by admins: they list the accounts and change roles.

type accountOut struct {
	ID    string     `json:"id"`
	Email string     `json:"email"`
	Name  string     `json:"name"`
	Role  users.Role `json:"role"`
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := require(v, users.Admin); err != nil {
		return err
	}
	list, err := users.Accounts(r.Context(), s.cfg.DB.DB())
	if err != nil {
		return err
	}
	out := []accountOut{}
	for _, a := range list {
		out = append(out, accountOut{ID: a.UserID, Email: a.Email, Name: a.Name, Role: a.Role})
	}
	return ok(w, out)
}

type roleIn struct {
	Role users.Role `json:"role"`
}

// changeRole gives a user another role; the users module checks again
// that the actor is an admin.
func (s *Server) changeRole(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := require(v, users.Admin); err != nil {
		return err
	}
	id, err := uuidParam(r, "id")
	if err != nil {
		return err
	}
	in, err := decode[roleIn](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	cmdID, err := s.commandID(r, "change-role")
	if err != nil {
		return err
	}
	_, err = s.cfg.App.Users.Handle(r.Context(), cmdID, users.Stream(id),
		users.ChangeRole{UserID: id, Role: in.Role, ActorID: v.ID, ActorRole: v.Role})
	if err != nil {
		return err
	}
	return noContent(w)
}
