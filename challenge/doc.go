// Package challenge lets a challenged visitor prove something and come
// back with a pass, without ipveil keeping any per-visitor state: a
// proof-of-work puzzle solved by the browser (no third party involved), or
// a CAPTCHA from Cloudflare Turnstile, hCaptcha or reCAPTCHA v2. Success
// earns a signed, short-lived pass cookie that any worker or replica
// sharing the key verifies.
//
// It is pure Go on the standard library and gjson, compiled into the
// Proxy-Wasm module: it never imports net, uses no Proxy-Wasm API and does
// no I/O. The filter owns routes, callouts, headers and shared data.
//
// # Flow
//
//  1. A request gets the verdict challenge. If it carries a pass cookie
//     ([CookieValue]) that [VerifyPass] accepts for the request's masked
//     network and host, the verdict becomes allow. A pass never overrides
//     block or a deny list: the filter consults it only for challenge.
//  2. Otherwise the filter answers with a challenge page: [Issue] a puzzle
//     (or [IssueTicket] for a CAPTCHA) bound to the masked network, the
//     host and the request's path, and [Template.Render] it.
//  3. The page posts token and nonce (or ticket and CAPTCHA answer) to the
//     verify path, default "/.ipveil/verify". The filter parses the body
//     with [ParseVerifyForm] and checks it with [Verify]; for a CAPTCHA,
//     [ParseCaptchaForm], [VerifyTicket], then a [SiteverifyRequest]
//     callout and [ParseSiteverify].
//  4. On success the filter answers 303 See Other to Puzzle.ReturnPath
//     with a Set-Cookie from [SetCookie] holding [IssuePass]. On failure
//     it serves a fresh challenge page (with PageData.Message) and counts
//     [Reason](err).
//
// What the filter adds around these calls:
//
//   - The verify path is served by the filter before any lookup and never
//     forwarded upstream. Only POST (else 405); a Content-Length over the
//     form limit is refused before the body is buffered (413).
//   - Challenge pages and verify answers carry Cache-Control: no-store.
//   - network is the masked client exactly as logged (the same Masker at
//     issue and verify time), host the :authority. A visitor whose masked
//     network changes is challenged again.
//   - The pass cookie is removed from the request before it goes upstream
//     ([RemoveCookie]).
//   - A [ReplayGuard] over shared data: a fixed number of slots (say 4096),
//     slot = little-endian uint64 of id[0:8] mod slots, key
//     "ipveil.replay.<slot>", value id (16 bytes) + until (8 bytes, unix
//     seconds). FirstUse reads the slot; if it holds id with until not yet
//     past, the puzzle is replayed; otherwise it writes id+until with the
//     CAS it read, retrying a few times on a CAS conflict. The key space is
//     fixed, so shared data, which has no delete, never grows.
//
// # Keys
//
// A [Keyring] holds HMAC-SHA256 keys by id; the first signs, all verify,
// so keys rotate without logging anybody out. [ParseKeyring] reads
// "k2:BASE64,k1:BASE64" (32 to 64 random bytes each, e.g. from
// "openssl rand -base64 32" or [NewKeyEntry]), which the filter takes from
// the VM environment. Errors name entries and key ids, never key bytes.
//
// # Formats
//
// Puzzles, tickets and passes are signed values:
//
//	value   = base64url(payload) "." base64url(HMAC-SHA256(key, payload))
//
// base64url without padding (RFC 4648 §5), decoded strictly (one text per
// value). Integers are big-endian; strings have a length prefix.
//
//	puzzle / ticket payload          pass payload
//	  1  kind 0x01 puzzle,             1  kind 0x02
//	        0x03 CAPTCHA ticket        1  key id length n, n key id
//	  1  key id length n, n key id     8  expiry, unix seconds
//	 16  puzzle id (crypto/rand)       1  network length, network
//	  8  issued at, unix seconds       1  host length, host
//	  8  expiry, unix seconds
//	  1  difficulty (0 for a ticket)
//	  1  network length, network
//	  1  host length, host
//	  2  return path length, path
//
// The kind byte is signed, so no value is accepted as another kind. The
// payload is signed, not encrypted: it carries only the masked network
// (such as "203.0.113.0/24"), never a client address; issuing refuses a
// single address or a prefix with host bits set. A puzzle token is about
// 150 bytes (at most [MaxTokenLen]), a pass about 100 (at most
// [MaxPassLen]), and both use only [A-Za-z0-9_.-], so they need no
// escaping in HTML, forms, URLs or cookies.
//
// # Proof of work
//
// The puzzle is the token itself. A nonce is the decimal text of a number
// (1 to 20 ASCII digits). The nonce solves the puzzle when
//
//	SHA-256(token + ":" + nonce)
//
// over the ASCII bytes of the token exactly as issued, a colon and the
// nonce exactly as posted, has at least difficulty leading zero bits,
// counted from the most significant bit of the first byte. For the
// difficulties allowed (1 to 32) that is: the first four digest bytes,
// read as a big-endian unsigned 32-bit number, are below 2^(32 -
// difficulty). The page's script, [Solve] and any other client try 0, 1,
// 2, … in turn; expect 2^difficulty hashes.
//
// The script is one inline <script> with a SHA-256 of its own: it hashes
// the token's whole 64-byte blocks once and only the last one or two
// blocks per nonce. It does not use crypto.subtle, which does not exist on
// plain-HTTP pages and, awaited once per hash, is about 60 times slower
// (measured in Node 20: 16 thousand hashes a second against 960
// thousand). It yields to the browser every 50 ms. Expected time on a
// desktop browser, at about a million hashes a second (phones are 3 to 5
// times slower):
//
//	difficulty 16    65 thousand hashes   ~0.07 s
//	difficulty 18   262 thousand hashes   ~0.3 s   (a good default)
//	difficulty 20     1 million hashes    ~1 s
//	difficulty 22     4 million hashes    ~4 s
//
// Proof of work is a cost, not a proof of humanity: native code computes
// SHA-256 faster than a browser (Go with SHA extensions: about 6 million
// hashes a second per core, so a difficulty-18 pass costs a bot about
// 40 ms of one core). Use it to slow down bulk traffic from medium-risk
// networks; use a CAPTCHA when that is not enough.
//
// Each puzzle can be redeemed once: [Verify] records its id in a
// [ReplayGuard] until it expires. [MemoryReplayGuard] serves tests and a
// single process; under Envoy the filter implements the interface over
// shared data (see [ReplayGuard] for the bounds).
//
// # CAPTCHA providers
//
// For [Turnstile], [HCaptcha] and [ReCaptcha] the page loads the
// provider's widget script ([Provider.ScriptURL]) with the operator's site
// key, inside the same form as the signed ticket; the widget puts its
// answer into [Provider.ResponseField] and the form posts to the same
// verify path. The filter then POSTs [SiteverifyRequest] to the provider
// ([Provider.SiteverifyAuthority], [Provider.SiteverifyPath]) and passes
// the answer to [ParseSiteverify], which requires success and the
// request's host as "hostname" (an answer solved on another site using
// the same key is refused).
//
// ipveil never sends the provider "remoteip", although every provider
// accepts it: that would give the visitor's raw address to a third party.
// The visitor's browser does reach the provider to load the widget; that
// is the price of using a CAPTCHA, and the reason proof of work is the
// default.
//
// # Pass cookie
//
// [SetCookie] writes HttpOnly, Secure and SameSite=Lax. Secure means the
// browser stores and sends the cookie only over HTTPS, or to localhost:
// on a plain-HTTP site the visitor would be challenged again after every
// success (set [CookieOptions].Insecure only for such a development
// setup). [CookieValue] reads a Cookie header robustly; [RemoveCookie]
// takes the pass out before the request goes upstream.
//
// # Pages
//
// [CompileTemplate] compiles an operator's HTML page with the placeholders
// {{title}}, {{message}}, {{return_path}} and {{challenge}}, or the
// built-in page for "". It does not use html/template, which would add
// about 4 MB to the Wasm module; every value is HTML-escaped, and the
// script reads its data from the form, so no value is ever written into
// script text. [Template.ContentSecurityPolicy] gives a strict policy for
// the built-in proof-of-work page.
//
// # Return paths
//
// [SafeReturnPath] admits only same-origin paths; everything else becomes
// "/". It is applied when a puzzle is issued and again when it is
// verified, so the verify endpoint cannot be used as an open redirect.
//
// # Errors
//
// Visitor-facing failures are the [*Error] values ([ErrMalformed],
// [ErrBadSignature], [ErrUnknownKey], [ErrExpired], [ErrWrongNetwork],
// [ErrWrongHost], [ErrInsufficientWork], [ErrReplayed], [ErrBadForm],
// [ErrTooLarge], [ErrMissingField], [ErrCaptchaFailed], [ErrProviderDown])
// and [*CaptchaError]. Each has a fixed Reason for metrics; no message
// contains a key, a token, a cookie or an address. Errors from issuing
// functions and [ParseKeyring] report configuration or programming
// mistakes.
package challenge
