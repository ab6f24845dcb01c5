package portal

import (
	"strconv"
	"time"

	"github.com/authgpts/authgpts/views/layout"
)

// Element ids of the webhooks regions.
const (
	IDWebhooksPanel     = "webhooks-panel"
	IDWebhookDeliveries = "webhook-deliveries"
)

// WebhooksPanelVM is the app page's Webhooks section: the endpoints, the form that adds
// one, a secret shown once after an add or a rotation, and the credits.low threshold.
type WebhooksPanelVM struct {
	AppURL    string
	Endpoints []WebhookEndpointRow
	Form      WebhookFormVM
	// NewSecret is set right after an endpoint was added or its secret rotated.
	NewSecret         string
	NewSecretEndpoint string
	Notice            string // a confirmation ("Test event queued …")
	Threshold         ThresholdFormVM
	EventTypes        []WebhookEventOption
}

// WebhookEventOption is one event checkbox.
type WebhookEventOption struct {
	Value, Label, Hint string
}

// WebhookFormVM is the add-endpoint form with its values and field errors.
type WebhookFormVM struct {
	URL    string
	Events []string
	Errors Errors
}

// ThresholdFormVM is the credits.low threshold form.
type ThresholdFormVM struct {
	Value string
	Error string
	Saved bool
}

// WebhookEndpointRow is one endpoint in the list.
type WebhookEndpointRow struct {
	ID             string
	URL            string
	Events         []string
	SecretHint     string
	PreviousUntil  *time.Time // the old secret still signs until then
	CreatedAt      time.Time
	FailingSince   *time.Time
	DisabledAt     *time.Time
	DisabledReason string
	DeliveriesURL  string
}

// WebhookDeliveriesPageVM is one endpoint's deliveries page.
type WebhookDeliveriesPageVM struct {
	Chrome   layout.Chrome
	AppName  string
	AppURL   string
	Endpoint WebhookEndpointRow
	List     WebhookDeliveriesVM
}

// WebhookDeliveriesVM is the deliveries region: queued deliveries, then attempts,
// newest first.
type WebhookDeliveriesVM struct {
	URL     string // the deliveries page, for the refresh
	Queued  []QueuedDeliveryRow
	Rows    []DeliveryAttemptRow
	Notice  string
	Limited bool
}

// QueuedDeliveryRow is a delivery waiting for its (first or next) attempt.
type QueuedDeliveryRow struct {
	EventID, EventType string
	NextAttemptAt      time.Time
	Attempts           int
}

// DeliveryAttemptRow is one attempt.
type DeliveryAttemptRow struct {
	ID           int64
	DeliveryID   string
	EventID      string
	EventType    string
	At           time.Time
	Attempt      int
	StatusCode   int // 0: no HTTP answer
	Error        string
	LatencyMS    int
	NextRetryAt  *time.Time // set when this attempt failed and a retry is pending
	State        string
	RequestBody  string
	ResponseBody string
	ResendURL    string
}

func (r DeliveryAttemptRow) ok() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

func (r DeliveryAttemptRow) statusText() string {
	if r.StatusCode == 0 {
		return "No answer"
	}
	return strconv.Itoa(r.StatusCode)
}

func (r DeliveryAttemptRow) latencyText() string {
	return strconv.Itoa(r.LatencyMS) + " ms"
}

func (r DeliveryAttemptRow) nextText() string {
	switch {
	case r.ok():
		return "—"
	case r.NextRetryAt != nil && r.State == "pending":
		return DateTime(*r.NextRetryAt)
	case r.State == "failed" && r.NextRetryAt == nil:
		return "None (gave up)"
	default:
		return "—"
	}
}

func isChecked(events []string, v string) bool { return contains(events, v) }
