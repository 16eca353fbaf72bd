//! The `Hark-Signature` header: proof for a receiver that a webhook came from hark and was not
//! replayed. Stripe-style: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; the
//! timestamp is signed with the body, so a receiver that rejects old timestamps rejects
//! replays. Pure.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const HEADER: &str = "Hark-Signature";

/// A new endpoint secret: 256 random bits, hex, with a prefix that says what it is.
pub fn new_secret() -> String {
    format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()))
}

/// The `Hark-Signature` value of `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_timestamp_and_body_as_a_fixed_vector() {
        // python3: hmac.new(b'whsec_test', b'1700000000.{"id":"x"}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature("whsec_test", 1_700_000_000, br#"{"id":"x"}"#),
            "t=1700000000,v1=80e8d098018f757aa814ab1abb924f35d304affa1d93d29611a54696207eb7c3"
        );
    }

    #[test]
    fn another_timestamp_or_body_or_secret_changes_the_signature() {
        let base = signature("whsec_test", 1_700_000_000, b"{}");
        let v1 = |s: &str| s.split_once(",v1=").map(|(_, v)| v.to_string()).unwrap();
        assert_ne!(v1(&base), v1(&signature("whsec_test", 1_700_000_001, b"{}")));
        assert_ne!(v1(&base), v1(&signature("whsec_test", 1_700_000_000, b"{ }")));
        assert_ne!(v1(&base), v1(&signature("whsec_other", 1_700_000_000, b"{}")));
    }

    #[test]
    fn secrets_are_random_and_long() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_") && a.len() == 6 + 64, "{a}");
    }
}
