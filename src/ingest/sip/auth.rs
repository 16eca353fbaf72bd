//! Optional SIP digest authentication of trunks (RFC 3261 §22, RFC 2617 MD5 with or without
//! `qop=auth`), as a pure core: the challenge hark sends with 401 and the check of the
//! `Authorization` a trunk answers with. Nonces are stateless: a timestamp sealed with a
//! per-process secret, valid for [`NONCE_LIFETIME_SECS`].

use md5::{Digest, Md5};
use sha2::Sha256;

/// How long a nonce hark issued is accepted.
pub const NONCE_LIFETIME_SECS: u64 = 300;

pub struct DigestAuth {
    user: String,
    password: String,
    realm: String,
    secret: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("no digest credentials")]
    Missing,
    #[error("malformed Authorization header")]
    Malformed,
    #[error("nonce expired or not issued by hark")]
    StaleNonce,
    #[error("wrong user, realm or password")]
    Rejected,
}

fn md5_hex(input: &str) -> String {
    hex::encode(Md5::digest(input.as_bytes()))
}

impl DigestAuth {
    pub fn new(user: &str, password: &str, realm: &str, secret: [u8; 32]) -> DigestAuth {
        DigestAuth { user: user.into(), password: password.into(), realm: realm.into(), secret }
    }

    fn seal(&self, issued: u64) -> String {
        let mut mac = Sha256::new();
        sha2::Digest::update(&mut mac, self.secret);
        sha2::Digest::update(&mut mac, issued.to_be_bytes());
        format!("{issued:x}.{}", &hex::encode(sha2::Digest::finalize(mac))[..32])
    }

    /// The `WWW-Authenticate` value of a 401, with a nonce issued at `now_secs`.
    pub fn challenge(&self, now_secs: u64) -> String {
        format!("Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"", self.realm, self.seal(now_secs))
    }

    /// Checks an `Authorization` header value for a request with `method`.
    pub fn verify(&self, method: &str, authorization: Option<&str>, now_secs: u64) -> Result<(), DigestError> {
        let value = authorization.ok_or(DigestError::Missing)?;
        let params = value.trim().strip_prefix("Digest").ok_or(DigestError::Malformed).map(parse_params)?;
        let get = |key: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str());
        let (Some(user), Some(realm), Some(nonce), Some(uri), Some(response)) =
            (get("username"), get("realm"), get("nonce"), get("uri"), get("response"))
        else {
            return Err(DigestError::Malformed);
        };
        let issued =
            nonce.split('.').next().and_then(|t| u64::from_str_radix(t, 16).ok()).ok_or(DigestError::StaleNonce)?;
        if self.seal(issued) != nonce || now_secs.saturating_sub(issued) > NONCE_LIFETIME_SECS {
            return Err(DigestError::StaleNonce);
        }
        if user != self.user || realm != self.realm {
            return Err(DigestError::Rejected);
        }
        let ha1 = md5_hex(&format!("{}:{}:{}", self.user, self.realm, self.password));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let expected = match get("qop") {
            Some(qop) => {
                let (nc, cnonce) =
                    (get("nc").ok_or(DigestError::Malformed)?, get("cnonce").ok_or(DigestError::Malformed)?);
                md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
            }
            None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
        };
        if expected.eq_ignore_ascii_case(response) {
            Ok(())
        } else {
            Err(DigestError::Rejected)
        }
    }
}

/// `key=value, key="quoted, value"` pairs.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((value, remainder)) => (value.to_string(), remainder),
                None => (quoted.to_string(), ""),
            },
            None => match after.split_once(',') {
                Some((value, remainder)) => (value.trim().to_string(), remainder),
                None => (after.trim().to_string(), ""),
            },
        };
        params.push((key, value));
        rest = remainder.trim_start().trim_start_matches(',');
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> DigestAuth {
        DigestAuth::new("trunk", "s3cret", "hark", [7; 32])
    }

    /// What a client computes from a challenge.
    fn answer(challenge: &str, user: &str, password: &str, qop: bool) -> String {
        let params = parse_params(challenge.strip_prefix("Digest").unwrap());
        let nonce = &params.iter().find(|(k, _)| k == "nonce").unwrap().1;
        let ha1 = md5_hex(&format!("{user}:hark:{password}"));
        let ha2 = md5_hex("INVITE:sip:service@127.0.0.1:5060");
        if qop {
            let response = md5_hex(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
            format!("Digest username=\"{user}\", realm=\"hark\", nonce=\"{nonce}\", uri=\"sip:service@127.0.0.1:5060\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abc\"")
        } else {
            let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
            format!("Digest username=\"{user}\",realm=\"hark\",nonce=\"{nonce}\",uri=\"sip:service@127.0.0.1:5060\",response=\"{response}\",algorithm=MD5")
        }
    }

    #[test]
    fn right_credentials_pass_with_and_without_qop() {
        let auth = auth();
        let challenge = auth.challenge(1000);
        assert_eq!(auth.verify("INVITE", Some(&answer(&challenge, "trunk", "s3cret", true)), 1010), Ok(()));
        assert_eq!(auth.verify("INVITE", Some(&answer(&challenge, "trunk", "s3cret", false)), 1010), Ok(()));
    }

    #[test]
    fn wrong_stale_forged_or_missing_credentials_fail() {
        let auth = auth();
        let challenge = auth.challenge(1000);
        assert_eq!(
            auth.verify("INVITE", Some(&answer(&challenge, "trunk", "guess", true)), 1010),
            Err(DigestError::Rejected)
        );
        assert_eq!(
            auth.verify("INVITE", Some(&answer(&challenge, "intruder", "s3cret", true)), 1010),
            Err(DigestError::Rejected)
        );
        assert_eq!(
            auth.verify("INVITE", Some(&answer(&challenge, "trunk", "s3cret", true)), 1000 + NONCE_LIFETIME_SECS + 1),
            Err(DigestError::StaleNonce)
        );
        let forged = DigestAuth::new("trunk", "s3cret", "hark", [8; 32]).challenge(1000);
        assert_eq!(
            auth.verify("INVITE", Some(&answer(&forged, "trunk", "s3cret", true)), 1010),
            Err(DigestError::StaleNonce)
        );
        assert_eq!(auth.verify("INVITE", None, 1010), Err(DigestError::Missing));
        assert_eq!(auth.verify("INVITE", Some("Basic dHJ1bms="), 1010), Err(DigestError::Malformed));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_headers_never_panic(value in "[ -~]{0,300}") {
            let _ = auth().verify("INVITE", Some(&value), 0);
            let _ = auth().verify("INVITE", Some(&format!("Digest {value}")), 0);
        }
    }
}
