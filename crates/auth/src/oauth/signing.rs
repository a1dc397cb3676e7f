//! Values the server signs and later trusts again: the cookie that remembers a person, the
//! token that binds a consent form to the request it was rendered for, and the token a signed-in
//! person's page forms carry against cross-site requests. HMAC-SHA-256 under a key
//! generated once and kept in the store, so every instance and every restart agrees.

use domain::{PrincipalId, Timestamp};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How long the person cookie lasts.
pub const PERSON_COOKIE_TTL_MS: i64 = 365 * 24 * 3600 * 1000;
/// How long a rendered consent form stays valid.
pub const FORM_TTL_MS: i64 = 30 * 60 * 1000;
/// How long a signed-in page's forms stay valid: a tab left open over a working day.
pub const PAGE_FORM_TTL_MS: i64 = 12 * 3600 * 1000;

pub(crate) struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub(crate) fn new(key: &str) -> Self {
        Signer {
            key: key.as_bytes().to_vec(),
        }
    }

    /// The MAC of `parts`, each prefixed with its length so that no two lists encode alike.
    fn mac(&self, purpose: &str, parts: &[&str]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any size");
        for part in std::iter::once(purpose).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    fn verify(&self, purpose: &str, parts: &[&str], signature_hex: &str) -> bool {
        match hex::decode(signature_hex) {
            Ok(signature) => self.mac(purpose, parts).verify_slice(&signature).is_ok(),
            Err(_) => false,
        }
    }

    /// `<person>.<expiry>.<mac>`.
    pub(crate) fn sign_person(&self, person: &PrincipalId, now: Timestamp) -> String {
        let expiry = (now.0 + PERSON_COOKIE_TTL_MS).to_string();
        let mac = self.mac("person", &[person.as_str(), &expiry]);
        format!(
            "{}.{expiry}.{}",
            person.as_str(),
            hex::encode(mac.finalize().into_bytes())
        )
    }

    pub(crate) fn verify_person(&self, value: &str, now: Timestamp) -> Option<PrincipalId> {
        let mut parts = value.rsplitn(3, '.');
        let signature = parts.next()?;
        let expiry = parts.next()?;
        let person = parts.next()?;
        let live = expiry.parse::<i64>().ok()? > now.0;
        (live && self.verify("person", &[person, expiry], signature))
            .then(|| PrincipalId::new(person))
    }

    /// `<person>.<family>.<expiry>.<mac>`: a person signed in with the personal token of
    /// `family`, whose session lasts only as long as that token.
    pub(crate) fn sign_person_via(
        &self,
        person: &PrincipalId,
        family: &str,
        now: Timestamp,
    ) -> String {
        let expiry = (now.0 + PERSON_COOKIE_TTL_MS).to_string();
        let mac = self.mac("person via", &[person.as_str(), family, &expiry]);
        format!(
            "{}.{family}.{expiry}.{}",
            person.as_str(),
            hex::encode(mac.finalize().into_bytes())
        )
    }

    /// The person a [`Self::sign_person_via`] value names, and the token family it depends on.
    pub(crate) fn verify_person_via(
        &self,
        value: &str,
        now: Timestamp,
    ) -> Option<(PrincipalId, String)> {
        let mut parts = value.rsplitn(4, '.');
        let signature = parts.next()?;
        let expiry = parts.next()?;
        let family = parts.next()?;
        let person = parts.next()?;
        let live = expiry.parse::<i64>().ok()? > now.0;
        (live
            && !person.contains('.')
            && self.verify("person via", &[person, family, expiry], signature))
        .then(|| (PrincipalId::new(person), family.to_owned()))
    }

    /// `<expiry>.<mac>` over the fields of a consent form.
    pub(crate) fn sign_form(&self, fields: &[&str], now: Timestamp) -> String {
        self.sign_expiring("form", FORM_TTL_MS, fields, now)
    }

    /// The form token's expiry, if it is ours, for these fields, and still live.
    pub(crate) fn verify_form(
        &self,
        fields: &[&str],
        token: &str,
        now: Timestamp,
    ) -> Option<Timestamp> {
        self.verify_expiring("form", fields, token, now)
    }

    /// The token a signed-in person's page forms carry (their CSRF token): `<expiry>.<mac>`
    /// over the person, under its own purpose so it can never pass for a consent form's.
    pub(crate) fn sign_page_form(&self, person: &PrincipalId, now: Timestamp) -> String {
        self.sign_expiring("page", PAGE_FORM_TTL_MS, &[person.as_str()], now)
    }

    /// Whether `token` is a live page-form token of `person`.
    pub(crate) fn verify_page_form(
        &self,
        person: &PrincipalId,
        token: &str,
        now: Timestamp,
    ) -> bool {
        self.verify_expiring("page", &[person.as_str()], token, now)
            .is_some()
    }

    fn sign_expiring(&self, purpose: &str, ttl_ms: i64, fields: &[&str], now: Timestamp) -> String {
        let expiry = (now.0 + ttl_ms).to_string();
        let mut parts = vec![expiry.as_str()];
        parts.extend_from_slice(fields);
        format!(
            "{expiry}.{}",
            hex::encode(self.mac(purpose, &parts).finalize().into_bytes())
        )
    }

    fn verify_expiring(
        &self,
        purpose: &str,
        fields: &[&str],
        token: &str,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let (expiry, signature) = token.split_once('.')?;
        let expires_at = expiry
            .parse::<i64>()
            .ok()
            .filter(|expiry| *expiry > now.0)?;
        let mut parts = vec![expiry];
        parts.extend_from_slice(fields);
        self.verify(purpose, &parts, signature)
            .then_some(Timestamp(expires_at))
    }

    /// Compares a typed passphrase with the configured one in constant time.
    pub(crate) fn same_passphrase(&self, typed: &str, configured: &str) -> bool {
        let expected = self
            .mac("passphrase", &[configured])
            .finalize()
            .into_bytes();
        self.mac("passphrase", &[typed])
            .verify_slice(&expected)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_cookies_verify_and_expire() {
        let signer = Signer::new("key");
        let person = PrincipalId::new("usr_abc");
        let cookie = signer.sign_person(&person, Timestamp(0));
        assert_eq!(signer.verify_person(&cookie, Timestamp(1)), Some(person));
        assert_eq!(
            signer.verify_person(&cookie, Timestamp(PERSON_COOKIE_TTL_MS + 1)),
            None
        );
        let forged = cookie.replacen("usr_abc", "usr_xyz", 1);
        assert_eq!(signer.verify_person(&forged, Timestamp(1)), None);
        assert_eq!(
            Signer::new("other").verify_person(&cookie, Timestamp(1)),
            None
        );
        assert_eq!(signer.verify_person("garbage", Timestamp(1)), None);
    }

    #[test]
    fn form_tokens_bind_their_fields() {
        let signer = Signer::new("key");
        let token = signer.sign_form(&["client", "https://a/cb"], Timestamp(0));
        assert_eq!(
            signer.verify_form(&["client", "https://a/cb"], &token, Timestamp(1)),
            Some(Timestamp(FORM_TTL_MS))
        );
        assert!(
            signer
                .verify_form(&["client", "https://evil/cb"], &token, Timestamp(1))
                .is_none()
        );
        assert!(
            signer
                .verify_form(&["clien", "thttps://a/cb"], &token, Timestamp(1))
                .is_none()
        );
        assert!(
            signer
                .verify_form(
                    &["client", "https://a/cb"],
                    &token,
                    Timestamp(FORM_TTL_MS + 1)
                )
                .is_none()
        );
    }

    #[test]
    fn page_form_tokens_are_the_persons_and_never_pass_as_consent_forms() {
        let signer = Signer::new("key");
        let ada = PrincipalId::new("usr_ada");
        let token = signer.sign_page_form(&ada, Timestamp(0));
        assert!(signer.verify_page_form(&ada, &token, Timestamp(1)));
        assert!(!signer.verify_page_form(&PrincipalId::new("usr_bo"), &token, Timestamp(1)));
        assert!(!signer.verify_page_form(&ada, &token, Timestamp(PAGE_FORM_TTL_MS + 1)));
        assert!(
            signer
                .verify_form(&["usr_ada"], &token, Timestamp(1))
                .is_none()
        );
        assert!(!signer.verify_page_form(&ada, "", Timestamp(1)));
    }

    #[test]
    fn a_session_via_a_token_names_its_family_and_passes_for_nothing_else() {
        let signer = Signer::new("key");
        let ada = PrincipalId::new("usr_ada");
        let value = signer.sign_person_via(&ada, "fam_1", Timestamp(0));
        assert_eq!(
            signer.verify_person_via(&value, Timestamp(1)),
            Some((ada.clone(), "fam_1".to_owned()))
        );
        assert_eq!(
            signer.verify_person(&value, Timestamp(1)),
            None,
            "never a plain person cookie"
        );
        let plain = signer.sign_person(&ada, Timestamp(0));
        assert_eq!(signer.verify_person_via(&plain, Timestamp(1)), None);
        let moved = value.replacen("fam_1", "fam_2", 1);
        assert_eq!(signer.verify_person_via(&moved, Timestamp(1)), None);
        assert_eq!(
            signer.verify_person_via(&value, Timestamp(PERSON_COOKIE_TTL_MS + 1)),
            None
        );
    }

    #[test]
    fn passphrases_compare_exactly() {
        let signer = Signer::new("key");
        assert!(signer.same_passphrase("open sesame", "open sesame"));
        assert!(!signer.same_passphrase("open sesame ", "open sesame"));
        assert!(!signer.same_passphrase("", "open sesame"));
    }
}
