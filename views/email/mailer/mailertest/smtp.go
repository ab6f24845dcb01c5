// Package mailertest runs a real SMTP server in process, so tests exercise go-mail's
// actual SMTP conversation and read back what it delivered.
package mailertest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"mime/quotedprintable"
)

// Message is one delivered mail, decoded.
type Message struct {
	From    string
	To      []string
	Subject string
	Text    string // the text/plain part
	HTML    string // the text/html part
}

// Server is an SMTP server on a loopback port that keeps every message it receives.
type Server struct {
	srv  *smtp.Server
	addr string
	mu   sync.Mutex
	msgs []Message
	cond *sync.Cond
}

// NewServer starts a server that lives until the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailertest: listen: %v", err)
	}
	s := &Server{addr: l.Addr().String()}
	s.cond = sync.NewCond(&s.mu)
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	go s.srv.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// URL is the SMTP_URL that reaches this server.
func (s *Server) URL() *url.URL { return &url.URL{Scheme: "smtp", Host: s.addr} }

// Messages returns everything received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitFor returns the newest message to addr received after the first `after` messages
// to that address, waiting up to 10 s.
func (s *Server) WaitFor(t testing.TB, addr string, after int) Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	timer := time.AfterFunc(10*time.Second, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var to []Message
		for _, m := range s.msgs {
			for _, r := range m.To {
				if strings.EqualFold(r, addr) {
					to = append(to, m)
				}
			}
		}
		if len(to) > after {
			return to[len(to)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailertest: no mail to %s within 10s", addr)
		}
		s.cond.Wait()
	}
}

// Count returns how many messages addr received.
func (s *Server) Count(addr string) int {
	n := 0
	for _, m := range s.Messages() {
		for _, r := range m.To {
			if strings.EqualFold(r, addr) {
				n++
			}
		}
	}
	return n
}

var codeRe = regexp.MustCompile(`\b(\d{6})\b`)

// Code extracts the 6-digit sign-in code from a message's text part.
func (m Message) Code() string {
	match := codeRe.FindStringSubmatch(m.Text)
	if match == nil {
		return ""
	}
	return match[1]
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s    *Server
	from string
	to   []string
}

func (se *session) AuthPlain(string, string) error { return nil }
func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	se.from = from
	return nil
}
func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}
func (se *session) Reset()        { se.from, se.to = "", nil }
func (se *session) Logout() error { return nil }

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := decode(raw)
	if err != nil {
		return err
	}
	msg.From, msg.To = se.from, append([]string(nil), se.to...)
	se.s.mu.Lock()
	se.s.msgs = append(se.s.msgs, msg)
	se.s.cond.Broadcast()
	se.s.mu.Unlock()
	return nil
}

func decode(raw []byte) (Message, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		subject = m.Header.Get("Subject")
	}
	out := Message{Subject: subject}
	err = walk(m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body, &out)
	return out, err
}

func walk(contentType, encoding string, body io.Reader, out *Message) error {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mediaType = "text/plain"
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walk(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part, out); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	switch mediaType {
	case "text/plain":
		out.Text = string(b)
	case "text/html":
		out.HTML = string(b)
	}
	return nil
}
