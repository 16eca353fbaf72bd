//! Where a visitor comes from: country (GeoIP database, else a trusted proxy's header, else
//! unknown) and device class (from the User-Agent). Computed once, when a chat starts.

use std::net::IpAddr;
use std::path::Path;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Device class of a User-Agent: `mobile`, `tablet`, `desktop` or `unknown`.
///
/// Tablets are checked first because tablet UAs also carry mobile tokens (Android tablets omit
/// "Mobile"; iPads say "iPad"). iPadOS 13+ Safari sends a desktop Mac UA by default and is then
/// classed desktop: the server cannot tell them apart.
pub fn device_class(user_agent: &str) -> &'static str {
    let ua = user_agent.to_ascii_lowercase();
    if ua.trim().is_empty() {
        return "unknown";
    }
    let has = |needle: &str| ua.contains(needle);
    if has("ipad")
        || has("tablet")
        || has("kindle")
        || has("silk/")
        || has("playbook")
        || (has("android") && !has("mobile"))
    {
        "tablet"
    } else if has("mobi")
        || has("iphone")
        || has("ipod")
        || has("android")
        || has("windows phone")
        || has("blackberry")
        || has("opera mini")
    {
        "mobile"
    } else if has("windows nt") || has("macintosh") || has("x11") || has("linux") || has("cros") {
        "desktop"
    } else {
        "unknown"
    }
}

/// Decides the visitor's address and country from the connection and its headers.
pub struct Origin {
    geoip: Option<maxminddb::Reader<Vec<u8>>>,
    trusted: Vec<IpNet>,
    country_header: String,
}

#[derive(Debug, thiserror::Error)]
#[error("GeoIP database {path}: {source}")]
pub struct GeoIpError {
    path: String,
    source: maxminddb::MaxMindDbError,
}

impl Origin {
    /// `geoip_db` empty means no database.
    pub fn new(geoip_db: &str, trusted: Vec<IpNet>, country_header: &str) -> Result<Origin, GeoIpError> {
        let geoip = if geoip_db.is_empty() {
            None
        } else {
            Some(
                maxminddb::Reader::open_readfile(Path::new(geoip_db))
                    .map_err(|source| GeoIpError { path: geoip_db.into(), source })?,
            )
        };
        Ok(Origin { geoip, trusted, country_header: country_header.to_string() })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The visitor's address: the peer, or, behind trusted proxies, the right-most untrusted
    /// address of X-Forwarded-For.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        forwarded.into_iter().rev().find(|ip| !self.is_trusted(*ip)).unwrap_or(peer)
    }

    /// ISO 3166 alpha-2 country, or None when unknown.
    pub fn country(&self, peer: IpAddr, headers: &HeaderMap) -> Option<String> {
        if let Some(reader) = &self.geoip {
            let ip = self.client_ip(peer, headers);
            return reader
                .lookup::<maxminddb::geoip2::Country>(ip)
                .ok()
                .flatten()
                .and_then(|c| c.country.and_then(|c| c.iso_code).map(str::to_string));
        }
        if !self.is_trusted(peer) {
            return None;
        }
        let code = headers.get(self.country_header.as_str())?.to_str().ok()?.trim();
        // CDNs use XX / T1 for unknown and Tor; only real two-letter codes count.
        (code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()) && code != "XX")
            .then(|| code.to_ascii_uppercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_classes_of_common_user_agents() {
        let cases = [
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", "mobile"),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36", "mobile"),
            ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "tablet"),
            ("Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", "tablet"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "desktop"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15", "desktop"),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", "desktop"),
            ("", "unknown"),
            ("curl/8.0", "unknown"),
        ];
        for (ua, class) in cases {
            assert_eq!(device_class(ua), class, "{ua}");
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn country_header_is_believed_only_from_trusted_proxies() {
        let origin = Origin::new("", vec!["127.0.0.1/32".parse().unwrap()], "CF-IPCountry").unwrap();
        let h = headers(&[("cf-ipcountry", "de")]);
        assert_eq!(origin.country("127.0.0.1".parse().unwrap(), &h), Some("DE".into()));
        assert_eq!(origin.country("203.0.113.9".parse().unwrap(), &h), None);
        assert_eq!(origin.country("127.0.0.1".parse().unwrap(), &headers(&[("cf-ipcountry", "XX")])), None);
        assert_eq!(origin.country("127.0.0.1".parse().unwrap(), &HeaderMap::new()), None);
    }

    #[test]
    fn client_ip_skips_trusted_hops_of_x_forwarded_for() {
        let origin = Origin::new("", vec!["10.0.0.0/8".parse().unwrap()], "CF-IPCountry").unwrap();
        let h = headers(&[("x-forwarded-for", "198.51.100.7, 203.0.113.5, 10.0.0.2")]);
        assert_eq!(origin.client_ip("10.0.0.1".parse().unwrap(), &h), "203.0.113.5".parse::<IpAddr>().unwrap());
        assert_eq!(origin.client_ip("192.0.2.1".parse().unwrap(), &h), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
