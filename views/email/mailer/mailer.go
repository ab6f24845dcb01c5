// Package mailer is the outbound mail seam of the handlers: SMTP through go-mail in
// production, and an in-memory development mailbox (shown at /dev/mail) when SMTP_URL
// is unset. Mail bodies are rendered by views/email.
package mailer

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/authgpts/authgpts/views/email"
)

// Message is one mail to send.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Mailer sends mail.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// SMTP sends mail through the server named by SMTP_URL.
type SMTP struct {
	opts []mail.Option
	host string
	from string
}

// NewSMTP configures delivery from an smtp:// or smtps:// URL. Credentials in the URL
// are used with whatever mechanism the server offers; smtp:// upgrades with STARTTLS
// when offered, smtps:// uses implicit TLS.
func NewSMTP(u *url.URL, from string) (*SMTP, error) {
	opts := []mail.Option{mail.WithTimeout(15 * time.Second)}
	if u.Scheme == "smtps" {
		opts = append(opts, mail.WithSSL(), mail.WithPort(465))
	} else {
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic), mail.WithPort(587))
	}
	if p := u.Port(); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("mailer: SMTP_URL port is not a number")
		}
		opts = append(opts, mail.WithPort(port))
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(u.User.Username()), mail.WithPassword(pass))
	}
	return &SMTP{opts: opts, host: u.Hostname(), from: from}, nil
}

// Send delivers m. Errors never include the message body, which may hold a code.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := mail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("mailer: from address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mailer: recipient address rejected")
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	}
	// A client per send keeps concurrent sends independent; dialling dominates anyway.
	client, err := mail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mailer: send via %s: %w", s.host, err)
	}
	return nil
}

// DevMailbox keeps the last mails in memory for /dev/mail and logs that one arrived,
// without its body (which may hold a sign-in code).
type DevMailbox struct {
	log  *slog.Logger
	now  func() time.Time
	mu   sync.Mutex
	msgs []email.DevMessage
}

const devMailboxSize = 50

// NewDevMailbox returns an empty development mailbox.
func NewDevMailbox(log *slog.Logger, now func() time.Time) *DevMailbox {
	return &DevMailbox{log: log, now: now}
}

// Send keeps m and logs where to read it.
func (d *DevMailbox) Send(_ context.Context, m Message) error {
	d.mu.Lock()
	d.msgs = append(d.msgs, email.DevMessage{To: m.To, Subject: m.Subject, Text: m.Text, SentAt: d.now()})
	if len(d.msgs) > devMailboxSize {
		d.msgs = d.msgs[len(d.msgs)-devMailboxSize:]
	}
	d.mu.Unlock()
	d.log.Info("mail kept in the development mailbox; read it at /dev/mail", "subject", m.Subject)
	return nil
}

// Messages returns the kept mail, newest first.
func (d *DevMailbox) Messages() []email.DevMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]email.DevMessage, len(d.msgs))
	for i, m := range d.msgs {
		out[len(d.msgs)-1-i] = m
	}
	return out
}
