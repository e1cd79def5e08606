//! REGISTER processing: RFC 3261 §10.3 steps 6–8, RFC 5627 §5.1 (instance-keyed bindings and
//! GRUU assignment), RFC 3327 §5.3 (storing and echoing Path).

use sha2::{Digest, Sha256};
use sip_message::{quote, response_to, ContactValue, HeaderName, Message, NameAddr, Uri};

use crate::date::http_date;
use crate::gruu::{public_gruu, temp_gruu_token, temporary_gruu};
use crate::{Binding, Origin, RegisterOutcome, Registrar};

/// Why a REGISTER is refused.
struct Reject {
    status: u16,
    reason: &'static str,
}

fn reject(status: u16, reason: &'static str) -> Reject {
    Reject { status, reason }
}

/// The fields of the request every binding update needs.
struct Request<'m> {
    call_id: &'m str,
    cseq: u32,
    /// Request-wide `Expires`, the default for contacts without an `expires` parameter.
    expires: Option<u32>,
    gruu: bool,
    path: Vec<String>,
    user_agent: Option<&'m str>,
}

pub(crate) fn process(
    registrar: &Registrar,
    request: &Message,
    aor: &str,
    origin: Origin<'_>,
    now: i64,
) -> RegisterOutcome {
    let current: Vec<Binding> = registrar.bindings(aor, now).cloned().collect();
    let result = update_bindings(registrar, request, aor, origin, now, &current);
    let (status, response) = match &result {
        Ok(bindings) => (200, ok_response(request, aor, bindings, now)),
        Err(Reject { status, reason }) => {
            let mut writer = response_to(request, *status, reason, Some(&to_tag(request)));
            if *status == 423 {
                writer.header_fmt(
                    "Min-Expires",
                    format_args!("{}", registrar.config.min_expires),
                );
            }
            (*status, writer.finish(None, b""))
        }
    };
    // Expired-but-unpurged bindings count as a change, so persisting drops them too.
    let stored = registrar.by_aor.get(aor).map_or(0, Vec::len);
    let bindings = result
        .ok()
        .filter(|new| *new != current || stored != current.len());
    RegisterOutcome {
        status,
        response,
        bindings,
    }
}

/// The AOR's binding set after the request (RFC 3261 §10.3 steps 6–7), or why it fails.
fn update_bindings(
    registrar: &Registrar,
    request: &Message,
    aor: &str,
    origin: Origin<'_>,
    now: i64,
    current: &[Binding],
) -> Result<Vec<Binding>, Reject> {
    let contacts = request
        .contacts()
        .map_err(|_| reject(400, "Invalid Contact header"))?;
    let req = Request {
        call_id: request
            .call_id()
            .map_err(|_| reject(400, "Invalid Call-ID header"))?,
        cseq: request
            .cseq()
            .map_err(|_| reject(400, "Invalid CSeq header"))?
            .seq,
        expires: request
            .u32_header(&HeaderName::Expires)
            .map_err(|_| reject(400, "Invalid Expires header"))?,
        gruu: request.has_token(&HeaderName::Supported, "gruu"),
        path: request
            .header_values(&HeaderName::Path)
            .map(str::to_owned)
            .collect(),
        user_agent: request.header(&HeaderName::UserAgent),
    };
    if contacts.is_empty() {
        // A query: list the bindings, change nothing.
        return Ok(current.to_vec());
    }
    if contacts.iter().any(|c| matches!(c, ContactValue::Star)) {
        if contacts.len() != 1 {
            return Err(reject(400, "Wildcard Contact with other contacts"));
        }
        if req.expires != Some(0) {
            return Err(reject(400, "Wildcard Contact requires Expires: 0"));
        }
        // Removing every binding still obeys the Call-ID/CSeq ordering of each (step 6).
        current.iter().try_for_each(|b| check_order(b, &req))?;
        return Ok(Vec::new());
    }

    let config = &registrar.config;
    // Bindings already written by this request are replaced without the ordering check:
    // the same contact listed twice in one REGISTER carries the same CSeq.
    let mut working: Vec<(Binding, bool)> = current.iter().cloned().map(|b| (b, false)).collect();
    for contact in &contacts {
        let ContactValue::Addr(addr) = contact else {
            continue;
        };
        let expires = contact_expires(addr, req.expires, config.default_expires)?;
        if expires != 0 && expires < config.min_expires {
            return Err(reject(423, "Interval Too Brief"));
        }
        let expires = expires.min(config.max_expires);
        let instance = match addr.params.get("+sip.instance") {
            None => None,
            Some(Some(value)) => Some(sip_message::unquote(value).into_owned()),
            Some(None) => return Err(reject(400, "Invalid +sip.instance parameter")),
        };
        let q = contact_q(addr)?;

        let mut temp_gruus = Vec::new();
        let mut index = 0;
        while let Some((existing, from_this_request)) = working.get(index) {
            if !same_binding(existing, &addr.uri, instance.as_deref()) {
                index += 1;
                continue;
            }
            if !from_this_request {
                check_order(existing, &req)?;
            }
            // Temporary GRUUs live as long as the registration of that instance with that
            // Call-ID; a new Call-ID means the UA restarted (RFC 5627 §5.1).
            if existing.call_id == req.call_id && existing.instance == instance {
                temp_gruus = existing.temp_gruus.clone();
            }
            working.remove(index);
        }
        if expires == 0 {
            continue;
        }
        if let (true, Some(instance)) = (req.gruu, instance.as_deref()) {
            temp_gruus.push(temp_gruu_token(
                &registrar.gruu_key,
                aor,
                instance,
                req.call_id,
                req.cseq,
            ));
            let excess = temp_gruus.len().saturating_sub(config.max_temp_gruus);
            temp_gruus.drain(..excess);
        }
        let binding = Binding {
            aor: aor.to_owned(),
            contact: addr.uri.text.to_owned(),
            instance,
            q,
            call_id: req.call_id.to_owned(),
            cseq: req.cseq,
            expires_at: now.saturating_add(i64::from(expires)),
            path: req.path.clone(),
            transport: origin.transport.to_owned(),
            source: origin.source.to_owned(),
            user_agent: req.user_agent.map(str::to_owned),
            temp_gruus,
        };
        working.push((binding, true));
    }
    if working.len() > config.max_contacts {
        // 403, not 503: retrying cannot help until the user removes a registration.
        return Err(reject(403, "Too Many Contacts"));
    }
    Ok(working.into_iter().map(|(b, _)| b).collect())
}

/// RFC 3261 §10.3 step 7: within one Call-ID, a request must be newer than the one that
/// made the binding; otherwise it is out of order and fails with 500 (step 8: a request
/// whose updates cannot all be made fails with 500 Server Internal Error).
fn check_order(existing: &Binding, req: &Request<'_>) -> Result<(), Reject> {
    if existing.call_id == req.call_id && req.cseq <= existing.cseq {
        return Err(reject(500, "Out of Order Request"));
    }
    Ok(())
}

/// A contact designates an existing binding when both carry the same `+sip.instance`
/// (RFC 5627 §5.1: the instance, not the URI, identifies the UA, whose address may change),
/// or else when the URIs are equivalent (RFC 3261 §10.3 step 7, §19.1.4).
fn same_binding(existing: &Binding, uri: &Uri<'_>, instance: Option<&str>) -> bool {
    if let (Some(new), Some(old)) = (instance, existing.instance.as_deref()) {
        return new.eq_ignore_ascii_case(old);
    }
    Uri::parse(&existing.contact).is_ok_and(|old| old.equivalent(uri))
}

/// RFC 3261 §10.2.1.1: the contact's `expires` parameter, else the Expires header, else the
/// registrar's default. Delta-seconds beyond 2^32-1 mean 2^32-1 (§20.19 / §25.1).
fn contact_expires(addr: &NameAddr<'_>, header: Option<u32>, default: u32) -> Result<u32, Reject> {
    match addr.params.get("expires") {
        None => Ok(header.unwrap_or(default)),
        Some(Some(value)) if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(value.parse::<u32>().unwrap_or(u32::MAX))
        }
        Some(_) => Err(reject(400, "Invalid expires parameter")),
    }
}

/// `q` is a qvalue: 0 to 1 with at most three decimals (RFC 3261 §25.1).
fn contact_q(addr: &NameAddr<'_>) -> Result<Option<f32>, Reject> {
    let Some(value) = addr.params.get("q") else {
        return Ok(None);
    };
    let valid = value.filter(|v| {
        let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
        matches!(whole, "0" | "1")
            && fraction.len() <= 3
            && fraction.bytes().all(|b| b.is_ascii_digit())
            && (whole == "0" || fraction.bytes().all(|b| b == b'0'))
    });
    valid
        .and_then(|v| v.parse::<f32>().ok())
        .map(Some)
        .ok_or_else(|| reject(400, "Invalid q parameter"))
}

/// The 200 (RFC 3261 §10.3 step 8): every current binding with its remaining lifetime,
/// GRUUs for instances when the UA supports them (RFC 5627 §5.1), the Path if the UA
/// supports it (RFC 3327 §5.3), and the Date.
fn ok_response(request: &Message, aor: &str, bindings: &[Binding], now: i64) -> bytes::Bytes {
    let gruu = request.has_token(&HeaderName::Supported, "gruu");
    // A GRUU has the scheme of the AOR it was registered for (RFC 5627 §3.1).
    let scheme = match request.to_header() {
        Ok(to) if to.uri.scheme.eq_ignore_ascii_case("sips") => "sips",
        _ => "sip",
    };
    let mut writer = response_to(request, 200, "OK", Some(&to_tag(request)));
    for binding in bindings {
        let mut contact = format!("<{}>", binding.contact);
        if let Some(q) = binding.q {
            contact.push_str(&format!(";q={}", format_q(q)));
        }
        contact.push_str(&format!(";expires={}", (binding.expires_at - now).max(0)));
        if let Some(instance) = &binding.instance {
            contact.push_str(&format!(";+sip.instance={}", quote(instance)));
            if gruu {
                contact.push_str(&format!(
                    ";pub-gruu={}",
                    quote(&public_gruu(scheme, aor, instance))
                ));
                if let Some(token) = binding.temp_gruus.last() {
                    contact.push_str(&format!(
                        ";temp-gruu={}",
                        quote(&temporary_gruu(scheme, aor, token))
                    ));
                }
            }
        }
        writer.header("Contact", &contact);
    }
    if request.has_token(&HeaderName::Supported, "path") {
        writer.copy_headers(request, &HeaderName::Path);
    }
    writer.header("Supported", "gruu, path");
    writer.header("Date", &http_date(now));
    writer.finish(None, b"")
}

/// `0.5`, `1`, `0.125`: at most three decimals, no trailing zeros.
fn format_q(q: f32) -> String {
    let text = format!("{q:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Registrar responses need a To tag (RFC 3261 §8.2.6.2). Derived from the Call-ID so a
/// retransmitted request that escapes the transaction layer gets the same tag.
fn to_tag(request: &Message) -> String {
    let call_id = request.call_id().unwrap_or_default();
    hex::encode(&Sha256::digest(call_id.as_bytes())[..8])
}
