//! `POST /v1/k8s-audit`: a Kubernetes audit webhook backend. The API server
//! sends an `audit.k8s.io/v1` `EventList`; each event becomes one entry:
//!
//! ```text
//! {"type":"k8s.audit","actor":<user.username>,"action":<verb>,
//!  "target":<namespaces/NS/RESOURCE/NAME[/SUBRESOURCE] or RESOURCE/NAME or requestURI>,
//!  "outcome":"success"|"denied"|"failure"|"unknown", "k8s":<the whole event>}
//! ```
//!
//! The API server does not retry a 4xx, so one event never fails its batch:
//! an event whose entry would be too large or too deeply nested is kept in
//! reduced form. Its `requestObject` and `responseObject` (then, if that is
//! not enough, its other largest members) are each replaced by
//!
//! ```text
//! {"truncated":true,"bytes":<the length of the member's JSON text as sent>}
//! ```
//!
//! and the entry gets `"truncated":[<the replaced members' names>]`. No
//! digest of the cut content is kept: an unsalted hash of a Secret or a
//! ConfigMap (or of values `--seal` rules would have sealed) lets anyone
//! who can read the log confirm guesses of it.
//!
//! Kubernetes content never seals: a member that holds a member named
//! `stele.seal` or `stele.sealed` anywhere (a ConfigMap key, an annotation)
//! is replaced the same way, whatever its size. Honoured, such a name would
//! either fail the whole batch (a placeholder's name is reserved) or let a
//! cluster user seal their own content from readers without an auditor key.
//! The log's own sealing rules (`--seal /k8s/...`) still apply.

use super::body::{ItemError, check_item};
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::fmt;
use stele_core::canonical::parse_strict;

/// The `type` of entries made from audit events.
pub(super) const EVENT_TYPE: &str = "k8s.audit";

/// Members replaced first when an event must be reduced.
const BULK: [&str; 2] = ["requestObject", "responseObject"];

// An object's members as raw JSON text, one level deep (no depth limit
// below it); a repeated name is an error.
struct Members<'a>(&'a mut Vec<(String, Box<RawValue>)>);

impl<'de> DeserializeSeed<'de> for Members<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Members<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Names seen, in a set: a scan of the list made an object of many
        // members cost quadratic time (80,000 members took 37 s).
        let mut seen = std::collections::HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !seen.insert(k.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate member {k:?}")));
            }
            let v = map.next_value::<Box<RawValue>>()?;
            self.0.push((k, v));
        }
        Ok(())
    }
}

fn members(text: &str) -> Result<Vec<(String, Box<RawValue>)>, String> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    Members(&mut out)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn marker(raw: &str) -> Value {
    json!({"truncated": true, "bytes": raw.len()})
}

/// Turns an EventList body into events. The list itself must be valid; an
/// event that cannot be kept whole is kept reduced (see the module docs).
pub(super) fn events_from_event_list(body: &[u8], max: usize) -> Result<Vec<Value>, ItemError> {
    let whole = |msg: String| ItemError {
        item: None,
        msg,
        too_large: false,
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        whole(format!(
            "request body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let list = members(text.trim()).map_err(|e| whole(format!("EventList: {e}")))?;
    let field = |name: &str| {
        list.iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| serde_json::from_str::<String>(v.get()).ok())
    };
    let (kind, api) = (field("kind"), field("apiVersion"));
    if kind.as_deref() != Some("EventList") || api.as_deref() != Some("audit.k8s.io/v1") {
        return Err(whole(format!(
            "expected kind \"EventList\" and apiVersion \"audit.k8s.io/v1\", found kind {} and apiVersion {}",
            show(kind.as_deref()),
            show(api.as_deref())
        )));
    }
    let items = list
        .iter()
        .find(|(k, _)| k == "items")
        .and_then(|(_, v)| serde_json::from_str::<Vec<Box<RawValue>>>(v.get()).ok())
        .ok_or_else(|| whole("EventList has no items array".into()))?;
    if items.len() > max {
        return Err(ItemError {
            item: Some(max),
            msg: format!(
                "more than {max} audit events in one request (--max-events): lower the API server's --audit-webhook-batch-max-size"
            ),
            too_large: true,
        });
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, raw) in items.iter().enumerate() {
        out.push(event_entry(i, raw.get()));
    }
    Ok(out)
}

// One audit event's entry: whole if it fits, else reduced.
fn event_entry(i: usize, raw: &str) -> Value {
    let what = format!("item {i}");
    if let Ok(ev) = parse_strict(raw)
        && ev.is_object()
        && !crate::sealed::marked(&ev)
    {
        let entry = map_event(&ev);
        // Every event's entry is built once here: size and nesting.
        if check_item(i, &entry, usize::MAX, &what).is_ok() {
            return entry;
        }
    }
    reduced(i, raw)
}

fn reduced(i: usize, raw: &str) -> Value {
    let what = format!("item {i}");
    let Ok(mut ms) = members(raw) else {
        // Not an object at all: only its hash is kept.
        let mut e = map_event(&json!({}));
        e["k8s"] = marker(raw);
        e["truncated"] = json!(["(event)"]);
        return e;
    };
    // Replace BULK first, then the largest members, until the entry fits.
    ms.sort_by_key(|(k, v)| {
        (
            !BULK.contains(&k.as_str()),
            std::cmp::Reverse(v.get().len()),
        )
    });
    // Each member parsed once (`None`: always replaced).
    let parsed: Vec<Option<Value>> = ms
        .iter()
        .map(|(k, v)| {
            if BULK.contains(&k.as_str()) {
                None
            } else {
                parse_strict(v.get())
                    .ok()
                    .filter(|v| !crate::sealed::marked(v))
            }
        })
        .collect();
    // The entry with the first `n` members (in that order) replaced, if it fits.
    let with_cut = |n: usize| -> Option<Value> {
        let mut ev = serde_json::Map::new();
        let mut cut: Vec<&str> = Vec::new();
        for (j, ((k, v), p)) in ms.iter().zip(&parsed).enumerate() {
            let keep = if j < n { None } else { p.clone() };
            let v = keep.unwrap_or_else(|| {
                cut.push(k);
                marker(v.get())
            });
            let _ = ev.insert(k.clone(), v);
        }
        let mut entry = map_event(&Value::Object(ev));
        cut.sort_unstable();
        entry["truncated"] = json!(cut);
        check_item(i, &entry, usize::MAX, &what)
            .ok()
            .map(|()| entry)
    };
    // The fewest members replaced, found in O(log n) tries, not n: 1, 2,
    // 4, … until one fits, then halving back (trying every n rebuilt and
    // checked the whole event each time: quadratic, minutes of CPU for one
    // item of 20,000 members). Replacing a member smaller than its marker
    // makes the entry longer, so sizes are not monotonic: what is found
    // always fits, though it may replace a few members more than the least.
    if let Some(e) = with_cut(0) {
        return e;
    }
    let (mut lo, mut hi) = (0, None);
    let mut n = 1;
    while n <= ms.len() {
        if let Some(e) = with_cut(n) {
            hi = Some((n, e));
            break;
        }
        lo = n;
        n = if n == ms.len() {
            n + 1
        } else {
            (2 * n).min(ms.len())
        };
    }
    if let Some((mut hi, mut best)) = hi {
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match with_cut(mid) {
                Some(e) => (hi, best) = (mid, e),
                None => lo = mid,
            }
        }
        return best;
    }
    let mut e = map_event(&json!({}));
    e["k8s"] = marker(raw);
    e["truncated"] = json!(["(event)"]);
    e
}

fn show(v: Option<&str>) -> String {
    v.map_or("(none)".into(), |s| format!("{s:?}"))
}

/// One audit event as a Stele event.
pub(super) fn map_event(ev: &Value) -> Value {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let actor = ev
        .get("user")
        .and_then(|u| s(u, "username"))
        .unwrap_or_else(|| "(unknown)".into());
    let action = s(ev, "verb").unwrap_or_else(|| "(unknown)".into());
    let target = match ev.get("objectRef").filter(|o| o.is_object()) {
        Some(o) => {
            // The resource path as in the API's URLs, so it is unambiguous.
            let mut parts = Vec::new();
            if let Some(ns) = s(o, "namespace").filter(|n| !n.is_empty()) {
                parts.push("namespaces".to_string());
                parts.push(ns);
            }
            if let Some(r) = s(o, "resource") {
                parts.push(r);
            }
            if let Some(n) = s(o, "name").filter(|n| !n.is_empty()) {
                parts.push(n);
            }
            if let Some(sub) = s(o, "subresource").filter(|n| !n.is_empty()) {
                parts.push(sub);
            }
            parts.join("/")
        }
        None => s(ev, "requestURI").unwrap_or_default(),
    };
    let code = ev
        .get("responseStatus")
        .and_then(|r| r.get("code"))
        .and_then(Value::as_u64);
    let outcome = match code {
        None => "unknown",
        Some(401 | 403) => "denied",
        Some(c) if c < 400 => "success",
        Some(_) => "failure",
    };
    json!({
        "type": EVENT_TYPE,
        "actor": actor,
        "action": action,
        "target": target,
        "outcome": outcome,
        "k8s": ev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_mapped_and_the_event_kept() {
        let ev = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": "a1", "stage": "ResponseComplete", "verb": "get",
            "requestURI": "/api/v1/namespaces/default/pods/web-0/log",
            "user": {"username": "alice", "groups": ["dev"]},
            "objectRef": {"resource": "pods", "namespace": "default", "name": "web-0",
                          "subresource": "log", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 403}
        });
        let m = map_event(&ev);
        assert_eq!(m["actor"], "alice");
        assert_eq!(m["action"], "get");
        assert_eq!(m["target"], "namespaces/default/pods/web-0/log");
        assert_eq!(m["outcome"], "denied");
        assert_eq!(m["k8s"], ev);
        let node = json!({"verb": "delete", "user": {"username": "bob"},
            "objectRef": {"resource": "nodes", "name": "n1"}, "responseStatus": {"code": 200}});
        assert_eq!(map_event(&node)["target"], "nodes/n1");
        assert_eq!(map_event(&node)["outcome"], "success");
        let nonres = json!({"verb": "get", "requestURI": "/healthz", "stage": "RequestReceived"});
        assert_eq!(map_event(&nonres)["target"], "/healthz");
        assert_eq!(map_event(&nonres)["outcome"], "unknown");
        assert_eq!(map_event(&nonres)["actor"], "(unknown)");
    }

    #[test]
    fn wrong_lists_are_refused() {
        let e = events_from_event_list(
            br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1beta1","items":[]}"#,
            10,
        )
        .unwrap_err();
        assert!(
            e.msg.contains("apiVersion \"audit.k8s.io/v1beta1\""),
            "{}",
            e.msg
        );
        let e = events_from_event_list(
            br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{},{},{}]}"#,
            2,
        )
        .unwrap_err();
        assert!(e.too_large, "{e:?}");
    }

    #[test]
    fn an_oversized_or_deep_event_is_reduced_not_refused() {
        let big = "x".repeat(70_000);
        let mut deep = String::new();
        for _ in 0..200 {
            deep.push_str("{\"a\":");
        }
        deep.push('1');
        for _ in 0..200 {
            deep.push('}');
        }
        let body = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[
              {{"verb":"get","user":{{"username":"a"}}}},
              {{"verb":"update","user":{{"username":"b"}},"requestObject":{{"data":"{big}"}},"responseObject":{{"ok":1}}}},
              {{"verb":"patch","user":{{"username":"c"}},"requestObject":{deep}}},
              3]}}"#
        );
        let evs = events_from_event_list(body.as_bytes(), 10).unwrap();
        assert_eq!(evs.len(), 4);
        assert_eq!(evs[0]["actor"], "a");
        assert!(evs[0].get("truncated").is_none());
        assert_eq!(evs[1]["actor"], "b");
        assert_eq!(
            evs[1]["truncated"],
            json!(["requestObject", "responseObject"])
        );
        let m = &evs[1]["k8s"]["requestObject"];
        let sent = format!(r#"{{"data":"{big}"}}"#);
        // No digest of what was cut (a guessing oracle for its content).
        assert_eq!(m, &json!({"truncated": true, "bytes": sent.len()}));
        assert_eq!(evs[2]["actor"], "c");
        assert_eq!(evs[2]["action"], "patch");
        assert_eq!(evs[2]["truncated"], json!(["requestObject"]));
        assert_eq!(evs[3]["truncated"], json!(["(event)"]));
    }

    // An item of many members, too big to keep whole: reduced to the fewest
    // members cut that fit (found by halving, not one try per member), and
    // a list or item with a repeated name among thousands is refused.
    #[test]
    fn items_of_many_members_are_reduced_to_the_fewest_cut() {
        // One item: 20 members of about 4 KB, then `small` tiny ones.
        let events = |small: usize| {
            let mut item = String::from(r#"{"verb":"get","user":{"username":"a"}"#);
            for k in 0..20 {
                item.push_str(&format!(r#","big{k}":"{}""#, "y".repeat(4000 + k)));
            }
            for k in 0..small {
                item.push_str(&format!(r#","a{k}":0"#));
            }
            item.push('}');
            let body = format!(
                r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{item}]}}"#
            );
            events_from_event_list(body.as_bytes(), 10).unwrap()
        };
        // 10,000 small members alone are over the entry's size: all cut.
        assert_eq!(events(10_000)[0]["truncated"], json!(["(event)"]));
        let evs = events(2_000);
        let cut = evs[0]["truncated"].as_array().unwrap();
        // The largest go first, and no small member is cut.
        assert!(!cut.is_empty() && cut.len() <= 20, "{cut:?}");
        let mut want: Vec<String> = (20 - cut.len()..20).map(|k| format!("big{k}")).collect();
        want.sort();
        assert_eq!(cut, &want.iter().map(|w| json!(w)).collect::<Vec<_>>());
        assert_eq!(evs[0]["k8s"]["a1999"], 0);
        assert_eq!(evs[0]["k8s"]["big0"].as_str().map(str::len), Some(4000));
        let dup = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[],{}"items":[]}}"#,
            (0..50_000)
                .map(|k| format!(r#""m{k}":0,"#))
                .collect::<String>()
        );
        let e = events_from_event_list(dup.as_bytes(), 10).unwrap_err();
        assert!(e.msg.contains("duplicate member \"items\""), "{}", e.msg);
    }

    #[test]
    fn seal_markers_and_placeholder_names_in_kubernetes_content_are_cut_not_honoured() {
        let body = r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[
          {"verb":"get","user":{"username":"alice"}},
          {"verb":"update","user":{"username":"mallory"},"objectRef":{"resource":"configmaps","name":"x"},
           "requestObject":{"data":{"stele.sealed":"v"}}},
          {"verb":"update","user":{"username":"mallory"},"annotations":{"stele.seal":"hide me","a":"b"}},
          {"verb":"update","user":{"username":"mallory"},"annotations":{"stele.seal":"hide me"},"level":"Metadata"}]}"#;
        let evs = events_from_event_list(body.as_bytes(), 10).unwrap();
        assert_eq!(evs.len(), 4);
        assert!(evs[0].get("truncated").is_none());
        assert_eq!(evs[1]["truncated"], json!(["requestObject"]));
        assert_eq!(evs[1]["target"], "configmaps/x");
        assert_eq!(evs[2]["truncated"], json!(["annotations"]));
        assert_eq!(evs[3]["truncated"], json!(["annotations"]));
        assert_eq!(evs[3]["k8s"]["level"], "Metadata");
        for e in &evs {
            assert!(!crate::sealed::marked(e), "{e}");
        }
    }
}
