//! Bech32 (BIP 173, not Bech32m) as age uses it: no length limit, one case.

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GEN: [u32; 5] = [
    0x3b6a_57b2,
    0x2650_8e6d,
    0x1ea1_19fa,
    0x3d42_33dd,
    0x2a14_62b3,
];

fn polymod(values: impl Iterator<Item = u8>) -> u32 {
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

fn hrp_expand(hrp: &str) -> impl Iterator<Item = u8> + '_ {
    hrp.bytes()
        .map(|b| b >> 5)
        .chain(std::iter::once(0))
        .chain(hrp.bytes().map(|b| b & 31))
}

// Regroups bits; `pad` for encoding (8 -> 5), strict for decoding (5 -> 8).
fn convert(data: &[u8], from: u32, to: u32, pad: bool) -> Option<Vec<u8>> {
    let (mut acc, mut bits) = (0u32, 0u32);
    let maxv = (1u32 << to) - 1;
    let mut out = Vec::with_capacity(data.len() * from as usize / to as usize + 1);
    for &v in data {
        acc = (acc << from) | u32::from(v);
        bits += from;
        while bits >= to {
            bits -= to;
            out.push(((acc >> bits) & maxv) as u8);
        }
    }
    if pad {
        if bits > 0 {
            out.push(((acc << (to - bits)) & maxv) as u8);
        }
    } else if bits >= from || ((acc << (to - bits)) & maxv) != 0 {
        return None;
    }
    Some(out)
}

/// Decodes a lowercase Bech32 string into its human-readable part and data.
pub(crate) fn decode(s: &str) -> Option<(String, Vec<u8>)> {
    if !s.is_ascii() || s.bytes().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let sep = s.rfind('1')?;
    let (hrp, data) = (&s[..sep], &s[sep + 1..]);
    if hrp.is_empty() || data.len() < 6 || hrp.bytes().any(|c| !(33..=126).contains(&c)) {
        return None;
    }
    let values: Vec<u8> = data
        .bytes()
        .map(|c| CHARSET.iter().position(|&x| x == c).map(|p| p as u8))
        .collect::<Option<_>>()?;
    if polymod(hrp_expand(hrp).chain(values.iter().copied())) != 1 {
        return None;
    }
    let bytes = convert(&values[..values.len() - 6], 5, 8, false)?;
    Some((hrp.to_string(), bytes))
}

/// Encodes data under a lowercase human-readable part.
pub(crate) fn encode(hrp: &str, data: &[u8]) -> String {
    let values = convert(data, 8, 5, true).expect("padding conversion never fails");
    let chk = polymod(
        hrp_expand(hrp)
            .chain(values.iter().copied())
            .chain([0u8; 6]),
    ) ^ 1;
    let mut s = String::with_capacity(hrp.len() + 1 + values.len() + 6);
    s.push_str(hrp);
    s.push('1');
    for v in values {
        s.push(char::from(CHARSET[usize::from(v)]));
    }
    for i in 0..6 {
        s.push(char::from(CHARSET[((chk >> (5 * (5 - i))) & 31) as usize]));
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn bip173_valid_strings() {
        for s in [
            "a12uel5l",
            "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
            "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        ] {
            let (hrp, _) = super::decode(s).unwrap_or_else(|| panic!("{s}"));
            assert!(s.starts_with(&hrp));
        }
        assert!(super::decode("a12uel5m").is_none());
        let enc = super::encode("age", &[0xff; 32]);
        assert_eq!(super::decode(&enc).unwrap(), ("age".into(), vec![0xff; 32]));
    }
}
