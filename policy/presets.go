package policy

import "sort"

// DefaultPreset is the preset used when the configuration names none.
const DefaultPreset = "ipasis"

// CustomPreset is the preset name for an API described entirely in
// configuration; it starts from an empty Provider.
const CustomPreset = "custom"

func at(paths ...string) FieldSpec { return FieldSpec{Paths: paths} }

func equals(path string, values ...string) FieldSpec {
	return FieldSpec{Paths: []string{path}, Match: MatchEquals, Values: values}
}

// presets holds the built-in providers. Field paths follow each provider's
// public documentation; the package documentation lists what was documented
// and what was assumed. Each returns a fresh value.
var presets = map[string]func() *Provider{
	// IPASIS lookup API: GET /v1/lookup?ip=…, key in X-API-Key. Documented
	// answer: privacy.{VPN,Proxy,Tor,Relay,Hosting} booleans and
	// asn.{ASN:"AS23005",Type}. risk.score (0..100) is assumed: it is
	// documented for IPASIS's email-validation answer, not the lookup
	// example; when absent the score stays unknown.
	"ipasis": func() *Provider {
		return &Provider{
			Authority: "api.ipasis.com",
			Method:    "GET",
			Path:      "/v1/lookup?ip={ip}",
			Headers:   [][2]string{{"x-api-key", "${IPASIS_API_KEY}"}},
			Fields: Fields{
				Tor:        at("privacy.Tor"),
				Proxy:      at("privacy.Proxy"),
				VPN:        at("privacy.VPN"),
				Relay:      at("privacy.Relay"),
				Datacenter: at("privacy.Hosting"),
				Score:      at("risk.score"),
				ASN:        at("asn.ASN"),
				ASNType:    at("asn.Type"),
			},
			ScoreScale: 1,
			ErrorPath:  "error",
		}
	},
	// ipinfo Privacy Detection: GET /{ip}/privacy with a bearer token;
	// booleans vpn, proxy, tor, relay, hosting. No score, no ASN.
	"ipinfo": func() *Provider {
		return &Provider{
			Authority: "ipinfo.io",
			Method:    "GET",
			Path:      "/{ip}/privacy",
			Headers:   [][2]string{{"authorization", "Bearer ${IPINFO_TOKEN}"}},
			Fields: Fields{
				Tor:        at("tor"),
				Proxy:      at("proxy"),
				VPN:        at("vpn"),
				Relay:      at("relay"),
				Datacenter: at("hosting"),
			},
			ScoreScale: 1,
			ErrorPath:  "error",
		}
	},
	// IPQualityScore Proxy & VPN Detection: GET /api/json/ip/{key}/{ip}
	// (the key-in-path form the API documents). Its "proxy" flag also covers
	// VPN and Tor, so VPN or Tor answers veto Proxy. fraud_score is 0..100;
	// success:false with a message marks errors, including exhausted credits.
	"ipqualityscore": func() *Provider {
		return &Provider{
			Authority: "www.ipqualityscore.com",
			Method:    "GET",
			Path:      "/api/json/ip/${IPQS_API_KEY}/{ip}",
			Fields: Fields{
				Tor:        at("tor"),
				Proxy:      FieldSpec{Paths: []string{"proxy"}, Unless: []string{"vpn", "tor"}},
				VPN:        at("vpn"),
				Datacenter: equals("connection_type", "data center"),
				Score:      at("fraud_score"),
				ASN:        at("ASN"),
				ASNType:    at("connection_type"),
			},
			ScoreScale:  1,
			StatusPath:  "success",
			StatusOK:    []string{"true"},
			MessagePath: "message",
		}
	},
	// AbuseIPDB CHECK endpoint: GET /api/v2/check?ipAddress=…, key in the Key
	// header. Only data.isTor is a boolean; abuseConfidenceScore is 0..100;
	// usageType "Data Center/Web Hosting/Transit" marks hosting.
	"abuseipdb": func() *Provider {
		return &Provider{
			Authority: "api.abuseipdb.com",
			Method:    "GET",
			Path:      "/api/v2/check?ipAddress={ip}&maxAgeInDays=90",
			Headers:   [][2]string{{"key", "${ABUSEIPDB_API_KEY}"}, {"accept", "application/json"}},
			Fields: Fields{
				Tor:        at("data.isTor"),
				Datacenter: equals("data.usageType", "data center/web hosting/transit"),
				Score:      at("data.abuseConfidenceScore"),
				ASNType:    at("data.usageType"),
			},
			ScoreScale:  1,
			ErrorPath:   "errors",
			MessagePath: "errors.0.detail",
		}
	},
	// proxycheck.io v3: GET /v3/{ip}?key=…. The answer is keyed by the
	// address, so paths start with the wildcard "*", which finds the one
	// member that has "detections" (or "network").
	"proxycheck": func() *Provider {
		const d = "*.detections."
		const n = "*.network."
		return &Provider{
			Authority: "proxycheck.io",
			Method:    "GET",
			Path:      "/v3/{ip}?key=${PROXYCHECK_API_KEY}",
			Fields: Fields{
				Tor:        at(d + "tor"),
				Proxy:      at(d + "proxy"),
				VPN:        at(d + "vpn"),
				Relay:      at(d + "relay"),
				Datacenter: at(d + "hosting"),
				Score:      at(d + "risk"),
				ASN:        at(n + "asn"),
				ASNType:    at(n + "type"),
			},
			ScoreScale:  1,
			StatusPath:  "status",
			StatusOK:    []string{"ok", "warning"},
			MessagePath: "message",
		}
	},
	// ipregistry: GET /{ip}?fields=connection,security with
	// "Authorization: ApiKey …"; nested security.* booleans,
	// connection.asn and connection.type. No score.
	"ipregistry": func() *Provider {
		return &Provider{
			Authority: "api.ipregistry.co",
			Method:    "GET",
			Path:      "/{ip}?fields=connection,security",
			Headers:   [][2]string{{"authorization", "ApiKey ${IPREGISTRY_API_KEY}"}},
			Fields: Fields{
				Tor:        at("security.is_tor_exit"),
				Proxy:      at("security.is_proxy"),
				VPN:        at("security.is_vpn"),
				Relay:      at("security.is_relay"),
				Datacenter: at("security.is_cloud_provider"),
				ASN:        at("connection.asn"),
				ASNType:    at("connection.type"),
			},
			ScoreScale:    1,
			ErrorPath:     "code",
			MessagePath:   "message",
			QuotaStatuses: []int{402},
		}
	},
	// ipgeolocation.io IP Security API v3: GET /v3/security?apiKey=…&ip=…;
	// security.* booleans and threat_score 0..100. Proxy covers known and
	// residential proxies.
	"ipgeolocation": func() *Provider {
		return &Provider{
			Authority: "api.ipgeolocation.io",
			Method:    "GET",
			Path:      "/v3/security?apiKey=${IPGEOLOCATION_API_KEY}&ip={ip}",
			Fields: Fields{
				Tor:        at("security.is_tor"),
				Proxy:      at("security.is_proxy", "security.is_residential_proxy"),
				VPN:        at("security.is_vpn"),
				Relay:      at("security.is_relay"),
				Datacenter: at("security.is_cloud_provider"),
				Score:      at("security.threat_score"),
			},
			ScoreScale:  1,
			ErrorPath:   "message",
			MessagePath: "message",
		}
	},
	// MaxMind GeoIP Insights web service: GET /geoip/v2.1/insights/{ip} with
	// HTTP Basic auth (account ID and license key; put the base64 of
	// "id:key" in MAXMIND_BASIC_AUTH). anonymizer.* flags are documented as
	// omitted unless true, so their absence reads False. user_type gives
	// hosting and consumer_privacy_network (relay); ip_risk_snapshot is
	// 0.01..99 and absent for low-risk networks.
	"maxmind": func() *Provider {
		return &Provider{
			Authority: "geoip.maxmind.com",
			Method:    "GET",
			Path:      "/geoip/v2.1/insights/{ip}",
			Headers:   [][2]string{{"authorization", "Basic ${MAXMIND_BASIC_AUTH}"}},
			Fields: Fields{
				Tor:        FieldSpec{Paths: []string{"anonymizer.is_tor_exit_node"}, Absent: False},
				Proxy:      FieldSpec{Paths: []string{"anonymizer.is_public_proxy", "anonymizer.is_residential_proxy"}, Absent: False},
				VPN:        FieldSpec{Paths: []string{"anonymizer.is_anonymous_vpn"}, Absent: False},
				Relay:      equals("traits.user_type", "consumer_privacy_network"),
				Datacenter: equals("traits.user_type", "hosting"),
				Score:      at("traits.ip_risk_snapshot"),
				ASN:        at("traits.autonomous_system_number"),
				ASNType:    at("traits.user_type"),
			},
			ScoreScale:    1,
			ErrorPath:     "error",
			MessagePath:   "error",
			QuotaStatuses: []int{402},
		}
	},
}

// Preset returns a fresh copy of the named built-in provider (Cluster is left
// empty), or false when there is no such preset.
func Preset(name string) (*Provider, bool) {
	mk, ok := presets[name]
	if !ok {
		return nil, false
	}
	p := mk()
	p.Preset = name
	return p, true
}

// PresetNames returns the built-in preset names, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
