//! What receivers get: the notification's view (kept in the outbox), the
//! bodies made from it (Alertmanager's client API, its webhook payload
//! version 4, a CloudEvents 1.0 envelope), the webhook signature, and one
//! HTTP POST over isahc.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures::AsyncReadExt;
use hmac::{Hmac, KeyInit, Mac};
use isahc::config::Configurable;
use serde_json::{json, Value};
use sha2::Sha256;

use super::config::{Receiver, ReceiverKind, Secret, WebhookFormat};
use crate::timefmt::iso_from_ms;

/// The header with a webhook body's signature: `sha256=` and the
/// HMAC-SHA256 of the exact body with the receiver's secret, in lower-case
/// hex.
pub const SIGNATURE_HEADER: &str = "X-Ipvtl-Signature";
/// The header with the moment a webhook request was sent, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Ipvtl-Timestamp";

pub use ipvtl_client::wire::NotificationView;

/// When a notification happened: its end if resolved, else its start.
fn time_of(n: &NotificationView) -> f64 {
    match (n.kind.as_str(), n.ends_at) {
        ("resolved", Some(end)) => end,
        _ => n.starts_at,
    }
}

fn ms(t: f64) -> u64 {
    (t.max(0.0) * 1000.0).round() as u64
}

fn iso(t: f64) -> String {
    iso_from_ms(ms(t))
}

/// A request to send: path-complete URL, body, extra headers.
#[derive(Debug)]
pub struct Outgoing {
    pub url: String,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

/// The request `receiver` gets for `notes` (one, or for Alertmanager's
/// re-sends, every firing alert); `external_url` the dashboard's address.
pub fn outgoing(receiver: &Receiver, notes: &[NotificationView], external_url: Option<&str>, now: f64) -> Outgoing {
    match &receiver.kind {
        ReceiverKind::Alertmanager => Outgoing {
            url: format!("{}/api/v2/alerts", receiver.url),
            body: alertmanager_body(notes, external_url).to_string(),
            headers: Vec::new(),
        },
        ReceiverKind::Webhook { format, secret } => {
            let body = match format {
                WebhookFormat::Alertmanager => webhook_v4(&receiver.name, notes, external_url),
                WebhookFormat::CloudEvents => cloudevent(&notes[0], external_url),
            }
            .to_string();
            let headers = vec![
                (SIGNATURE_HEADER, sign(secret, body.as_bytes())),
                (TIMESTAMP_HEADER, format!("{}", now.floor() as u64)),
            ];
            let headers = match format {
                WebhookFormat::CloudEvents => {
                    let mut h = headers;
                    h.push(("Content-Type", "application/cloudevents+json".into()));
                    h
                }
                WebhookFormat::Alertmanager => headers,
            };
            Outgoing { url: receiver.url.clone(), body, headers }
        }
    }
}

/// `sha256=HEX`: HMAC-SHA256 of `body` with `secret`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret.0).expect("HMAC takes a key of any length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + tag.len() * 2);
    hex.push_str("sha256=");
    for b in tag.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Alertmanager's client API body: `[{labels, annotations, startsAt,
/// endsAt, generatorURL}]` (`endsAt` only once resolved).
fn alertmanager_body(notes: &[NotificationView], external_url: Option<&str>) -> Value {
    let alerts: Vec<Value> = notes
        .iter()
        .map(|n| {
            let mut a = json!({
                "labels": n.labels,
                "annotations": n.annotations,
                "startsAt": iso(n.starts_at),
            });
            if let Some(end) = n.ends_at {
                a["endsAt"] = iso(end).into();
            }
            if let Some(url) = external_url {
                a["generatorURL"] = format!("{url}/").into();
            }
            a
        })
        .collect();
    Value::Array(alerts)
}

/// Alertmanager's webhook payload, version 4: one group per alert name.
fn webhook_v4(receiver: &str, notes: &[NotificationView], external_url: Option<&str>) -> Value {
    let first = &notes[0];
    let alertname = first.labels.get("alertname").cloned().unwrap_or_default();
    let alerts: Vec<Value> = notes
        .iter()
        .map(|n| {
            json!({
                "status": n.kind,
                "labels": n.labels,
                "annotations": n.annotations,
                "startsAt": iso(n.starts_at),
                "endsAt": n.ends_at.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), iso),
                "generatorURL": external_url.map(|u| format!("{u}/")).unwrap_or_default(),
                "fingerprint": n.fingerprint,
                "id": n.id,
            })
        })
        .collect();
    let common = |f: fn(&NotificationView) -> &BTreeMap<String, String>| -> BTreeMap<String, String> {
        f(first)
            .iter()
            .filter(|(k, v)| notes.iter().all(|n| f(n).get(*k) == Some(*v)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\"}}"),
        "truncatedAlerts": 0,
        "status": if notes.iter().any(|n| n.kind == "firing") { "firing" } else { "resolved" },
        "receiver": receiver,
        "groupLabels": {"alertname": alertname},
        "commonLabels": common(|n| &n.labels),
        "commonAnnotations": common(|n| &n.annotations),
        "externalURL": external_url.unwrap_or_default(),
        "alerts": alerts,
    })
}

/// A CloudEvents 1.0 JSON envelope of one notification.
fn cloudevent(n: &NotificationView, external_url: Option<&str>) -> Value {
    json!({
        "specversion": "1.0",
        "id": n.id,
        "source": external_url.unwrap_or("/ipvtl-dashboard"),
        "type": format!("io.ipvtl.alert.{}", n.kind),
        "subject": n.labels.get("alertname"),
        "time": iso(time_of(n)),
        "datacontenttype": "application/json",
        "data": n,
    })
}

/// How a delivery went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// 2xx: acknowledged.
    Accepted(u16),
    /// Worth trying again (no answer, 5xx, 408, 429).
    Retry(String),
    /// Refused for good (another 4xx): the body will not do better.
    Refused(String),
}

/// POSTs `out` with a time limit.
pub async fn post(client: &isahc::HttpClient, out: &Outgoing, timeout: Duration) -> Sent {
    let mut req = isahc::Request::post(&out.url).timeout(timeout);
    if !out.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        req = req.header("Content-Type", "application/json");
    }
    for (k, v) in &out.headers {
        req = req.header(*k, v.as_str());
    }
    let req = match req.body(out.body.clone()) {
        Ok(r) => r,
        Err(e) => return Sent::Refused(format!("cannot make the request: {e}")),
    };
    match client.send_async(req).await {
        Err(e) => Sent::Retry(format!("{}: {e}", out.url)),
        Ok(mut resp) => {
            let code = resp.status().as_u16();
            let mut text = String::new();
            let _ = resp.body_mut().take(2048).read_to_string(&mut text).await;
            let why = || format!("{}: HTTP {code} {}", out.url, text.trim().chars().take(300).collect::<String>());
            match code {
                200..=299 => Sent::Accepted(code),
                408 | 429 | 500..=599 => Sent::Retry(why()),
                _ => Sent::Refused(why()),
            }
        }
    }
}

/// The shared client for receivers: no redirects, no connection reuse
/// beyond a few.
pub fn client() -> Result<isahc::HttpClient, String> {
    isahc::HttpClient::builder()
        .redirect_policy(isahc::config::RedirectPolicy::None)
        .connect_timeout(Duration::from_secs(5))
        .connection_cache_size(16)
        .build()
        .map_err(|e| format!("cannot make the HTTP client for alert receivers: {e}"))
}

/// Unix seconds now.
pub fn unix_now() -> f64 {
    crate::timefmt::unix_s(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(kind: &str) -> NotificationView {
        NotificationView {
            id: NotificationView::id_of("00000000000000ab", kind, 1_700_000_000.5),
            kind: kind.into(),
            fingerprint: "00000000000000ab".into(),
            labels: [("alertname".to_string(), "IpvtlServerDown".to_string()), ("server".into(), "s1".into())].into(),
            annotations: [("summary".to_string(), "down".to_string())].into(),
            starts_at: 1_700_000_000.5,
            ends_at: (kind == "resolved").then_some(1_700_000_060.0),
        }
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        let sig = sign(&Secret(b"Jefe".to_vec()), b"what do ya want for nothing?");
        assert_eq!(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn alertmanager_body_has_ends_at_only_when_resolved() {
        let am = Receiver { name: "am".into(), url: "http://am:9093".into(), kind: ReceiverKind::Alertmanager };
        let out = outgoing(&am, &[note("firing")], Some("http://dash"), 0.0);
        assert_eq!(out.url, "http://am:9093/api/v2/alerts");
        let v: Value = serde_json::from_str(&out.body).unwrap();
        assert_eq!(v[0]["labels"]["server"], "s1");
        assert_eq!(v[0]["startsAt"], "2023-11-14T22:13:20.500Z");
        assert!(v[0].get("endsAt").is_none());
        assert_eq!(v[0]["generatorURL"], "http://dash/");
        let out = outgoing(&am, &[note("resolved")], None, 0.0);
        let v: Value = serde_json::from_str(&out.body).unwrap();
        assert_eq!(v[0]["endsAt"], "2023-11-14T22:14:20.000Z");
    }

    #[test]
    fn webhooks_are_signed_over_the_exact_body() {
        let secret = Secret(b"k".to_vec());
        for format in [WebhookFormat::Alertmanager, WebhookFormat::CloudEvents] {
            let r = Receiver {
                name: "hook".into(),
                url: "http://h/x".into(),
                kind: ReceiverKind::Webhook { format, secret: secret.clone() },
            };
            let out = outgoing(&r, &[note("resolved")], None, 1_700_000_100.9);
            let sig = out.headers.iter().find(|(k, _)| *k == SIGNATURE_HEADER).unwrap();
            assert_eq!(sig.1, sign(&secret, out.body.as_bytes()));
            let ts = out.headers.iter().find(|(k, _)| *k == TIMESTAMP_HEADER).unwrap();
            assert_eq!(ts.1, "1700000100");
            let v: Value = serde_json::from_str(&out.body).unwrap();
            match format {
                WebhookFormat::Alertmanager => {
                    assert_eq!(v["version"], "4");
                    assert_eq!(v["status"], "resolved");
                    assert_eq!(v["alerts"][0]["id"], note("resolved").id);
                    assert_eq!(v["commonLabels"]["server"], "s1");
                }
                WebhookFormat::CloudEvents => {
                    assert_eq!(v["specversion"], "1.0");
                    assert_eq!(v["type"], "io.ipvtl.alert.resolved");
                    assert_eq!(v["id"], note("resolved").id);
                    assert_eq!(v["time"], "2023-11-14T22:14:20.000Z");
                    assert_eq!(v["data"]["labels"]["alertname"], "IpvtlServerDown");
                }
            }
        }
    }
}
