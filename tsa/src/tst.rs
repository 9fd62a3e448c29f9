//! The TSTInfo (RFC 3161 2.4.2) with a `genTime` that may have fractional
//! seconds. Hand-written: x509-tsp's `TstInfo` reads `genTime` with der 0.7's
//! `GeneralizedTime`, which takes only `YYYYMMDDHHMMSSZ` (RFC 5280's profile),
//! so a token from a TSA that writes the fraction RFC 3161 allows
//! (`20261130120000.25Z`) did not parse at all. The other fields are
//! x509-tsp's types, in x509-tsp's order.

use der::asn1::Int;
use der::{
    DateTime, DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag, Writer,
};
use std::time::Duration;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::name::GeneralName;
use x509_tsp::{Accuracy, MessageImprint, TsaPolicyId, TspVersion};

/// Bytes of a genTime at most (14 digits, a point, 9 digits, `Z`; longer
/// fractions are refused rather than read without bound).
const MAX_LEN: usize = 25;

/// `TSTInfo` as x509-tsp defines it, with [`GenTime`] for `genTime`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct TstInfo {
    pub version: TspVersion,
    pub policy: TsaPolicyId,
    pub message_imprint: MessageImprint,
    pub serial_number: Int,
    pub gen_time: GenTime,
    #[asn1(optional = "true")]
    pub accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    pub ordering: bool,
    #[asn1(optional = "true")]
    pub nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub tsa: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// A DER GeneralizedTime as RFC 3161 2.4.2 allows it for `genTime`:
/// `YYYYMMDDHHMMSS[.f]Z`, where the fraction `f`, when present, is one to
/// nine digits of which the last is not `0` (X.690 11.7: DER drops trailing
/// zeros, and the point with them).
#[derive(Clone, Debug, Eq, PartialEq)]
pub(crate) struct GenTime {
    /// The bytes as the token has them (re-encoded unchanged).
    raw: Vec<u8>,
    /// Since the Unix epoch, fraction included.
    at: Duration,
}

impl GenTime {
    /// The time, fraction included.
    pub(crate) fn unix_duration(&self) -> Duration {
        self.at
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`: the second the time falls in, rounded up
    /// when it has a fraction ("existed by" stays true).
    pub(crate) fn to_string_rounded_up(&self) -> String {
        let secs = Duration::from_secs(self.at.as_secs() + u64::from(self.at.subsec_nanos() > 0));
        DateTime::from_unix_duration(secs)
            .map_or_else(|_| "(out of range)".into(), |d| d.to_string())
    }
}

impl FixedTag for GenTime {
    const TAG: Tag = Tag::GeneralizedTime;
}

impl<'a> DecodeValue<'a> for GenTime {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let len = usize::try_from(header.length)?;
        if !(15..=MAX_LEN).contains(&len) {
            return Err(Self::TAG.value_error());
        }
        let mut buf = [0u8; MAX_LEN];
        let raw = reader.read_into(&mut buf[..len])?;
        let (whole, frac) = match raw.split_last() {
            Some((b'Z', rest)) => match rest.split_at(14) {
                (w, []) => (w, &[][..]),
                (w, [b'.', f @ ..]) if !f.is_empty() && f.len() <= 9 && f.last() != Some(&b'0') => {
                    (w, f)
                }
                _ => return Err(Self::TAG.value_error()),
            },
            _ => return Err(Self::TAG.value_error()),
        };
        if !whole.iter().chain(frac).all(u8::is_ascii_digit) {
            return Err(Self::TAG.value_error());
        }
        // The whole seconds, through der's calendar and range checks.
        let d = |i: usize| (whole[i] - b'0') * 10 + (whole[i + 1] - b'0');
        let year = u16::from(d(0)) * 100 + u16::from(d(2));
        let secs = DateTime::new(year, d(4), d(6), d(8), d(10), d(12))
            .map_err(|_| Self::TAG.value_error())?
            .unix_duration();
        let nanos = frac
            .iter()
            .chain(std::iter::repeat(&b'0'))
            .take(9)
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        Ok(Self {
            raw: raw.to_vec(),
            at: secs + Duration::from_nanos(u64::from(nanos)),
        })
    }
}

impl EncodeValue for GenTime {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.raw.len())
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::GenTime;
    use der::{Decode, Encode};

    fn parse(s: &str) -> Result<GenTime, der::Error> {
        let mut tlv = vec![0x18, s.len() as u8];
        tlv.extend_from_slice(s.as_bytes());
        GenTime::from_der(&tlv)
    }

    #[test]
    fn gen_time_takes_der_fractions_and_refuses_the_rest() {
        let t = parse("20261130120000Z").unwrap();
        assert_eq!(t.unix_duration().subsec_nanos(), 0);
        assert_eq!(t.to_string_rounded_up(), "2026-11-30T12:00:00Z");
        let f = parse("20261130120000.25Z").unwrap();
        assert_eq!(
            f.unix_duration() - t.unix_duration(),
            std::time::Duration::from_millis(250)
        );
        assert_eq!(f.to_string_rounded_up(), "2026-11-30T12:00:01Z");
        assert_eq!(
            parse("20261130235959.123456789Z")
                .unwrap()
                .to_string_rounded_up(),
            "2026-12-01T00:00:00Z"
        );
        // Re-encoded byte for byte.
        let mut tlv = vec![0x18, 18];
        tlv.extend_from_slice(b"20261130120000.25Z");
        assert_eq!(f.to_der().unwrap(), tlv);
        for bad in [
            "20261130120000.250Z",        // a trailing zero (not DER)
            "20261130120000.Z",           // a point without digits
            "20261130120000,5Z",          // a comma
            "20261130120000.5",           // no Z
            "20261130120000.1234567891Z", // more than 9 digits
            "202611301200Z",              // no seconds
            "20261130120000+0100",        // a time zone
            "20261330120000Z",            // month 13
            "2026113012000a.5Z",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
