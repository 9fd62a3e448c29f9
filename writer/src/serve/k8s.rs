//! `POST /v1/k8s-audit`: a Kubernetes audit webhook backend. The API server
//! sends an `audit.k8s.io/v1` `EventList`; each event becomes one entry:
//!
//! ```text
//! {"type":"k8s.audit","actor":<user.username>,"action":<verb>,
//!  "target":<namespaces/NS/RESOURCE/NAME[/SUBRESOURCE] or RESOURCE/NAME or requestURI>,
//!  "outcome":"success"|"denied"|"failure"|"unknown", "k8s":<the whole event>}
//! ```

use super::body::{ItemError, check_item};
use serde_json::{Value, json};
use stele_core::canonical::parse_strict;

/// The `type` of entries made from audit events.
pub const EVENT_TYPE: &str = "k8s.audit";

/// Turns an EventList body into events, all or nothing.
pub fn events_from_event_list(body: &[u8]) -> Result<Vec<Value>, ItemError> {
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
    let list = parse_strict(text).map_err(|e| whole(format!("EventList: {e}")))?;
    let kind = list.get("kind").and_then(Value::as_str);
    let api = list.get("apiVersion").and_then(Value::as_str);
    if kind != Some("EventList") || api != Some("audit.k8s.io/v1") {
        return Err(whole(format!(
            "expected kind \"EventList\" and apiVersion \"audit.k8s.io/v1\", found kind {} and apiVersion {}",
            show(kind),
            show(api)
        )));
    }
    let Some(items) = list.get("items").and_then(Value::as_array) else {
        return Err(whole("EventList has no items array".into()));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, ev) in items.iter().enumerate() {
        let what = format!("item {i}");
        if !ev.is_object() {
            return Err(ItemError {
                item: Some(i),
                msg: format!("{what}: audit event is not a JSON object"),
                too_large: false,
            });
        }
        let entry = map_event(ev);
        // Raw length for the size check: the event as sent, roughly.
        let approx = serde_json::to_string(ev).map_or(usize::MAX, |s| s.len());
        check_item(i, &entry, approx, &what)?;
        out.push(entry);
    }
    Ok(out)
}

fn show(v: Option<&str>) -> String {
    v.map_or("(none)".into(), |s| format!("{s:?}"))
}

/// One audit event as a Stele event.
pub fn map_event(ev: &Value) -> Value {
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
        )
        .unwrap_err();
        assert!(
            e.msg.contains("apiVersion \"audit.k8s.io/v1beta1\""),
            "{}",
            e.msg
        );
        let e = events_from_event_list(
            br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{},3]}"#,
        )
        .unwrap_err();
        assert_eq!(e.item, Some(1));
    }
}
