// Package policy turns a reputation API's answer about a client address into
// a verdict.
//
// It is pure Go (standard library and gjson), shared by the Proxy-Wasm filter
// and the native ipveil command, and makes no network calls: the filter does
// the callout and hands the answer to Extract.
//
// # From answer to verdict
//
//	p := ParseProvider(cfg.Object("provider"))  // request template + field map
//	e, err := p.Expand(vmEnv)                    // ${NAME} → API keys, once at start
//	path := e.RequestPath(ip)                    // :path of the callout
//	s, err := Extract(p, status, body)           // answer → Signals, or a typed *Error
//	d := pol.Evaluate(s)                         // Signals → Decision (no allocation)
//	d = pol.ErrorDecision()                      // when the lookup failed
//
// Signals are tri-state: a signal the provider did not report, reported as
// null, or reported in a form that does not coerce stays Unknown — never
// false — and no rule condition matches an Unknown value. Values coerce
// sensibly: "85" → 85, "true"/"yes"/"1" → true, "AS13335" → 13335; a score is
// multiplied by score_scale and must land in 0..100.
//
// # Default policy
//
// Without a "rules" key the policy is DefaultRules with default "allow" and
// on_error "allow":
//
//	tor           Tor exit node        → block
//	proxy         anonymising proxy    → block
//	score_high    score ≥ 90           → block
//	score_medium  score ≥ 50           → challenge
//
// VPN, relay (iCloud Private Relay) and datacenter addresses are never blocked
// on that signal alone, and a failed or inconclusive lookup fails open. Write
// "rules": [] for no rules at all.
//
// # Presets
//
// Each preset fills in authority, path, auth header and field map; set
// "cluster" and the environment variable holding the key, and override
// anything else. Field paths are gjson paths.
//
//	preset          path (authority)                               key from
//	ipasis          /v1/lookup?ip={ip} (api.ipasis.com)             x-api-key: ${IPASIS_API_KEY}
//	ipinfo          /{ip}/privacy (ipinfo.io)                       authorization: Bearer ${IPINFO_TOKEN}
//	ipqualityscore  /api/json/ip/${IPQS_API_KEY}/{ip} (www.ipqualityscore.com)
//	abuseipdb       /api/v2/check?ipAddress={ip}&maxAgeInDays=90    key: ${ABUSEIPDB_API_KEY}
//	                (api.abuseipdb.com)
//	proxycheck      /v3/{ip}?key=${PROXYCHECK_API_KEY} (proxycheck.io)
//	ipregistry      /{ip}?fields=connection,security                authorization: ApiKey ${IPREGISTRY_API_KEY}
//	                (api.ipregistry.co)
//	ipgeolocation   /v3/security?apiKey=${IPGEOLOCATION_API_KEY}&ip={ip}
//	                (api.ipgeolocation.io)
//	maxmind         /geoip/v2.1/insights/{ip} (geoip.maxmind.com)   authorization: Basic ${MAXMIND_BASIC_AUTH}
//
// Field maps (tor, proxy, vpn, relay, datacenter; score; asn; asn_type):
//
//	ipasis          privacy.Tor, privacy.Proxy, privacy.VPN, privacy.Relay, privacy.Hosting;
//	                risk.score; asn.ASN ("AS23005"); asn.Type
//	ipinfo          tor, proxy, vpn, relay, hosting; no score or ASN
//	ipqualityscore  tor, proxy unless vpn or tor, vpn, —, connection_type = "Data Center";
//	                fraud_score; ASN; connection_type
//	abuseipdb       data.isTor, —, —, —, data.usageType = "Data Center/Web Hosting/Transit";
//	                data.abuseConfidenceScore; —; data.usageType
//	proxycheck      *.detections.{tor,proxy,vpn,relay,hosting}; *.detections.risk;
//	                *.network.asn; *.network.type
//	ipregistry      security.{is_tor_exit,is_proxy,is_vpn,is_relay,is_cloud_provider};
//	                —; connection.asn; connection.type
//	ipgeolocation   security.{is_tor, is_proxy or is_residential_proxy, is_vpn, is_relay,
//	                is_cloud_provider}; security.threat_score; —; —
//	maxmind         anonymizer.{is_tor_exit_node, is_public_proxy or is_residential_proxy,
//	                is_anonymous_vpn} (absent means false); traits.user_type =
//	                "consumer_privacy_network" / "hosting"; traits.ip_risk_snapshot;
//	                traits.autonomous_system_number; traits.user_type
//
// The IPASIS risk.score path is an assumption (the documented lookup example
// has no score); when the answer has none, the score stays unknown. MaxMind's
// Basic credentials are the base64 of "accountID:licenseKey".
//
// Keys in a path template are URL-escaped on expansion. Prefer header auth
// where a provider offers it: a header is less likely than a URL to be copied
// into logs.
//
// # Errors
//
// Extract fails with an *Error whose Kind (KindHTTPStatus, KindQuota,
// KindProviderError, KindEmptyBody, KindUnparsable, KindTooLarge,
// KindNoSignals; the filter adds KindTimeout, KindReset, KindUnknownCluster)
// names the failure for metrics and decision lines. Error messages never
// quote the provider's answer, which may contain the client address.
package policy
