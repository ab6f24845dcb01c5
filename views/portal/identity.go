package portal

// IDIdentitySource is the "How your users sign in" section.
const IDIdentitySource = "identity-source"

// IdentitySourceVM is the "How your users sign in" section: the chosen source, its
// settings as typed (never the client secret), the callback URLs to register upstream,
// and a newly generated own-login signing secret, shown once.
type IdentitySourceVM struct {
	AppURL          string
	Kind            string // email, oidc, github, own: as chosen in the form
	SavedKind       string // as saved: what sign-in does now
	OIDCIssuer      string
	ClientID        string
	HasClientSecret bool
	Scopes          string
	OwnLoginURL     string
	OwnPublicKey    string
	HasOwnSecret    bool
	NewOwnSecret    string // shown once, right after it was generated
	CallbackURL     string // <base>/login/upstream/callback
	OwnCallbackURL  string // <base>/login/own/callback
	OwnAudience     string // the aud (and idp) of own-login assertions
	Errors          Errors
	Saved           bool
	Switched        bool // the source changed in this save
}

func sourceLabel(kind string) string {
	switch kind {
	case "oidc":
		return "an OpenID Connect provider"
	case "github":
		return "GitHub"
	case "own":
		return "your own login page"
	}
	return "an AuthGPTs email code"
}

// sourceVisibility shows only the fields of the chosen source, with CSS :has() on the
// radio buttons (no script; without :has support every field simply stays visible).
const sourceVisibility = "[&:has([value=email]:checked)_.idp-upstream]:hidden [&:has([value=email]:checked)_.idp-own]:hidden " +
	"[&:has([value=oidc]:checked)_.idp-own]:hidden [&:has([value=github]:checked)_.idp-own]:hidden " +
	"[&:has([value=github]:checked)_.idp-issuer]:hidden [&:has([value=own]:checked)_.idp-upstream]:hidden"

func secretHint(has bool) string {
	if has {
		return "Stored encrypted and never shown again. Leave empty to keep the saved one."
	}
	return "Stored encrypted and never shown again."
}

func secretPlaceholder(has bool) string {
	if has {
		return "•••••••• (saved)"
	}
	return ""
}

func nodeSnippet(vm IdentitySourceVM) string {
	return `import { jwtVerify, SignJWT } from "jose";
const secret = new TextEncoder().encode(process.env.AUTHGPTS_SIGNING_SECRET);

// GET /authgpts/login?login_request=…  (after your own sign-in)
const { payload: req } = await jwtVerify(loginRequest, secret, { audience: "` + vm.OwnLoginURL + `" });
const assertion = await new SignJWT({ nonce: req.nonce, email: user.email, email_verified: true })
  .setProtectedHeader({ alg: "HS256" })
  .setSubject(String(user.id)).setAudience(req.assertion_aud)
  .setJti(crypto.randomUUID()).setIssuedAt().setExpirationTime("2m")
  .sign(secret);
const back = new URL(req.return_to);
back.searchParams.set("state", req.state);
back.searchParams.set("assertion", assertion);
res.redirect(303, back.toString());`
}

func goSnippet(vm IdentitySourceVM) string {
	return `secret := []byte(os.Getenv("AUTHGPTS_SIGNING_SECRET"))
tok, err := jwt.ParseSigned(r.URL.Query().Get("login_request"), []jose.SignatureAlgorithm{jose.HS256})
var req struct {
	jwt.Claims
	State        string ` + "`json:\"state\"`" + `
	Nonce        string ` + "`json:\"nonce\"`" + `
	ReturnTo     string ` + "`json:\"return_to\"`" + `
	AssertionAud string ` + "`json:\"assertion_aud\"`" + `
}
if err != nil || tok.Claims(secret, &req) != nil ||
	req.Claims.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{"` + vm.OwnLoginURL + `"}, Time: time.Now()}, 0) != nil {
	http.Error(w, "bad login request", 400); return
}
// … sign the user in your own way, then:
signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, nil)
now := time.Now()
assertion, _ := jwt.Signed(signer).Claims(jwt.Claims{
	Subject: user.ID, Audience: jwt.Audience{req.AssertionAud}, ID: rand.Text(),
	IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)),
}).Claims(map[string]any{"nonce": req.Nonce, "email": user.Email, "email_verified": true}).Serialize()
back, _ := url.Parse(req.ReturnTo)
q := back.Query(); q.Set("state", req.State); q.Set("assertion", assertion); back.RawQuery = q.Encode()
http.Redirect(w, r, back.String(), http.StatusSeeOther)`
}
