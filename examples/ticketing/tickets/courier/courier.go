// Package courier connects the tickets module to a courier: [Client]
// speaks a courier's HTTP API (create a shipment with an idempotency key,
// track it), and [Fake] is a local courier service speaking the same API,
// for the tests and the demo, which can be told to fail requests, lose
// parcels or deliver them.
//
// The API, as the fake serves it:
//
//	POST /v1/shipments          Idempotency-Key: KEY
//	     {"reference": ..., "recipient": {name, street, city, postal_code, country}, "contents": ...}
//	  -> 201 {"tracking_number": "FC000001", "status": "in_transit", "updated_at": ...}
//	     (200 and the same shipment for a key seen before)
//	GET  /v1/shipments/{tracking}
//	  -> 200 {"tracking_number": ..., "status": "in_transit" | "delivered" | "lost", "updated_at": ...}
//	POST /control/fail-next     {"count": N}   the next N shipments fail with 503
//	POST /control/lose-next     {"count": N}   the next N parcels get lost
//	POST /control/shipments/{tracking}/lose | /deliver
package courier

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"esgo.dev/examples/ticketing/tickets"
)

// Client is a tickets.Courier that talks to a courier's HTTP API.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the courier API at baseURL (without the
// "/v1"). hc defaults to a client with a 10-second timeout.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), hc: hc}
}

type address struct {
	Name       string `json:"name"`
	Street     string `json:"street"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

type shipmentRequest struct {
	Reference string  `json:"reference"`
	Recipient address `json:"recipient"`
	Contents  string  `json:"contents"`
}

type shipmentResponse struct {
	TrackingNumber string    `json:"tracking_number"`
	Status         string    `json:"status"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Ship creates a shipment of the printed ticket, with s.Key as the
// idempotency key: the courier answers a repeat with the parcel it
// created the first time. A 4xx answer (other than 429) is a
// *tickets.PermanentError.
func (c *Client) Ship(ctx context.Context, s tickets.Shipment) (string, error) {
	body, err := json.Marshal(shipmentRequest{
		Reference: s.TicketID,
		Recipient: address{Name: s.To.Name, Street: s.To.Street, City: s.To.City, PostalCode: s.To.PostalCode, Country: s.To.Country},
		Contents:  "printed ticket " + s.Code,
	})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/shipments", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", s.Key)
	var out shipmentResponse
	if err := c.do(req, &out); err != nil {
		return "", err
	}
	return out.TrackingNumber, nil
}

// Track returns where a parcel is.
func (c *Client) Track(ctx context.Context, tracking string) (tickets.Tracking, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/shipments/"+url.PathEscape(tracking), nil)
	if err != nil {
		return tickets.Tracking{}, err
	}
	var out shipmentResponse
	if err := c.do(req, &out); err != nil {
		return tickets.Tracking{}, err
	}
	return tickets.Tracking{Number: out.TrackingNumber, State: tickets.ParcelState(out.Status), At: out.UpdatedAt}, nil
}

func (c *Client) do(req *http.Request, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("courier: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("courier: %w", err)
	}
	if resp.StatusCode >= 300 {
		err := fmt.Errorf("courier: %s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(data)))
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return &tickets.PermanentError{Err: err}
		}
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("courier: %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}
