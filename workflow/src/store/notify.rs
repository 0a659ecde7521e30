//! E-mail notifications: which events mail whom, the per-user opt-outs and
//! the notification outbox (every SQL statement on `workflow.mail_settings`,
//! `workflow.notification_prefs` and `workflow.mail_outbox`), which also
//! carries invitations by SMS (channel `sms`, [`sms_invitation`]) and is
//! purged after its retention ([`purge`]).
//!
//! [`queue`] runs inside the transaction of the event (`events::emit`), so
//! a mail is queued exactly when its event commits and is never lost on a
//! crash; `mailer.rs` sends the outbox. Mail is queued only while the
//! running service has an SMTP relay configured (`workflow.mail_settings`,
//! written at start-up), only to users with an e-mail address, an enabled
//! account and organisation, and who did not turn the kind off.
//!
//! Everything put into a header (the subject) is built here from server
//! data; user-chosen text (a contract's title) is cleaned of control
//! characters and shortened first, so no value can add a header line.

use serde_json::Value;
use tokio_postgres::GenericClient;
use tokio_postgres::Transaction;

use super::StoreError;
use crate::status::{SignerStatus, Status};

/// Preservation of your bank submitted for review (to its reviewers).
pub const PRESERVATION_AWAITING_REVIEW: &str = "preservation.awaiting_review";
/// Your preservation approved (to its creator).
pub const PRESERVATION_APPROVED: &str = "preservation.approved";
/// Your preservation rejected (to its creator).
pub const PRESERVATION_REJECTED: &str = "preservation.rejected";
/// A contract awaits your signature (to its signers; outside invitees by
/// the address they were invited at).
pub const CONTRACT_AWAITING_SIGNATURE: &str = "contract.awaiting_signature";
/// Every signer signed: the contract awaits review (to the bank's
/// reviewers).
pub const CONTRACT_AWAITING_REVIEW: &str = "contract.awaiting_review";
/// A judicial request arrived (to the institution's users).
pub const JUDICIAL_REQUEST_RECEIVED: &str = "judicial_request.received";
/// Your judicial request was decided: certified or refused (to its
/// applicant).
pub const JUDICIAL_REQUEST_DECIDED: &str = "judicial_request.decided";

/// Every notification kind, with what it tells.
pub const KINDS: &[(&str, &str)] = &[
    (
        PRESERVATION_AWAITING_REVIEW,
        "本行有保全等待您审核 (a preservation of your bank awaits your review)",
    ),
    (
        PRESERVATION_APPROVED,
        "您的保全已审核通过 (your preservation was approved)",
    ),
    (
        PRESERVATION_REJECTED,
        "您的保全被驳回 (your preservation was rejected)",
    ),
    (
        CONTRACT_AWAITING_SIGNATURE,
        "有合同等待您签署 (a contract awaits your signature)",
    ),
    (
        CONTRACT_AWAITING_REVIEW,
        "本行有合同等待您审核 (a contract of your bank awaits your review)",
    ),
    (
        JUDICIAL_REQUEST_RECEIVED,
        "贵机构收到司法出证申请 (your institution received a judicial request)",
    ),
    (
        JUDICIAL_REQUEST_DECIDED,
        "您的司法出证申请已处理 (your judicial request was decided)",
    ),
];

/// Text fit for a header and a one-line mention: control characters
/// (CR, LF, TAB, ...) become spaces, runs of spaces one, at most `max`
/// characters.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' {
            if space || out.is_empty() {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        out.push(c);
    }
    let out = out.trim_end();
    if out.chars().count() > max {
        let mut cut: String = out.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        out.to_owned()
    }
}

/// One bare e-mail address (as `lettre` parses it), nothing that could end
/// a header.
fn address_ok(e: &str) -> bool {
    e.len() <= 254
        && !e.chars().any(|c| c.is_control() || c.is_whitespace())
        && e.parse::<lettre::Address>().is_ok()
}

/// Record what the running service's outbox sends: mail (`enabled`, links
/// under `link_base`) and SMS (`sms_enabled`, links under `sms_link_base`).
pub async fn configure<C: GenericClient + Sync>(
    c: &C,
    enabled: bool,
    link_base: &str,
    sms_enabled: bool,
    sms_link_base: &str,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE workflow.mail_settings
            SET enabled = $1, link_base = $2, sms_enabled = $3, sms_link_base = $4",
        &[&enabled, &link_base, &sms_enabled, &sms_link_base],
    )
    .await?;
    Ok(())
}

/// The outbox's channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Through the SMTP relay, to an e-mail address.
    Email,
    /// Through the SMS gateway, to a phone number.
    Sms,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 2] = [Channel::Email, Channel::Sms];

    /// As stored (`workflow.mail_outbox.channel`) and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// The outbox's states, as stored and as metric labels.
pub const STATES: [&str; 3] = ["pending", "sent", "failed"];

/// One mail to queue.
struct Mail<'a> {
    kind: &'static str,
    object: String,
    subject: String,
    /// The body's first lines (the link and the footer follow).
    text: String,
    /// Path under the link base.
    path: String,
    link_base: &'a str,
}

impl Mail<'_> {
    fn body(&self) -> String {
        format!(
            "{}\n\n{}{}\n\n--\nAnchord。在通知设置中选择您接收哪些邮件（GET/PUT /v1/me/notifications）。\nChange which e-mails you receive in your notification settings.\n",
            self.text, self.link_base, self.path
        )
    }

    /// Queue the mail to the users `ids` that may receive it.
    async fn to_users(&self, tx: &Transaction<'_>, ids: &[i64]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        Ok(tx
            .execute(
                "INSERT INTO workflow.mail_outbox (message_id, user_id, recipient, kind, object, subject, body)
                 SELECT gen_random_uuid()::text, u.id, u.email, $2, $3, $4, $5
                   FROM workflow.users u LEFT JOIN workflow.organisations o ON o.id = u.organisation_id
                  WHERE u.id = ANY($1) AND u.email IS NOT NULL AND u.disabled_at IS NULL
                    AND o.disabled_at IS NULL
                    AND NOT EXISTS (SELECT 1 FROM workflow.notification_prefs n
                                     WHERE n.user_id = u.id AND n.kind = $2 AND NOT n.enabled)",
                &[&ids, &self.kind, &self.object, &self.subject, &self.body()],
            )
            .await?)
    }

    /// Queue the mail to an outside address (an invitee).
    async fn to_address(&self, tx: &Transaction<'_>, email: &str) -> Result<u64, StoreError> {
        Ok(tx
            .execute(
                "INSERT INTO workflow.mail_outbox (message_id, user_id, recipient, kind, object, subject, body)
                 VALUES (gen_random_uuid()::text, NULL, $1, $2, $3, $4, $5)",
                &[&email, &self.kind, &self.object, &self.subject, &self.body()],
            )
            .await?)
    }
}

/// The SMS link base, when SMS is on.
async fn sms_link_base(tx: &Transaction<'_>) -> Result<Option<String>, StoreError> {
    let r = tx
        .query_opt(
            "SELECT sms_enabled, sms_link_base FROM workflow.mail_settings",
            &[],
        )
        .await?;
    Ok(match r {
        Some(r) if r.try_get::<_, bool>(0)? => Some(r.try_get(1)?),
        _ => None,
    })
}

/// The settings, when mail is on.
async fn link_base(tx: &Transaction<'_>) -> Result<Option<String>, StoreError> {
    let r = tx
        .query_opt("SELECT enabled, link_base FROM workflow.mail_settings", &[])
        .await?;
    Ok(match r {
        Some(r) if r.try_get::<_, bool>(0)? => Some(r.try_get(1)?),
        _ => None,
    })
}

async fn ids(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<i64>, StoreError> {
    Ok(tx
        .query(sql, params)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The reviewers of `tenant` but `except` (who may not review their own).
async fn reviewers(
    tx: &Transaction<'_>,
    tenant: &str,
    except: i64,
) -> Result<Vec<i64>, StoreError> {
    ids(
        tx,
        "SELECT id FROM workflow.users WHERE role = 'reviewer' AND tenant = $1 AND id <> $2",
        &[&tenant, &except],
    )
    .await
}

/// Queue the mails `event` sends (called by `events::emit` in the event's
/// transaction). Events that mail nobody, and every event while mail is
/// off, queue nothing.
pub async fn queue(tx: &Transaction<'_>, event: &str, object: &Value) -> Result<(), StoreError> {
    let Some(id) = object.get("id").and_then(Value::as_i64) else {
        return Ok(());
    };
    let wanted = matches!(
        event,
        "preservation.submitted"
            | "preservation.approved"
            | "preservation.rejected"
            | "contract.created"
            | "contract.awaiting_review"
            | "judicial_request.created"
            | "judicial_request.certified"
            | "judicial_request.refused"
    );
    if !wanted {
        return Ok(());
    }
    let Some(base) = link_base(tx).await? else {
        return Ok(());
    };
    let base = base.trim_end_matches('/');
    match event {
        "preservation.submitted" | "preservation.approved" | "preservation.rejected" => {
            let Some(r) = tx
                .query_opt(
                    "SELECT number, tenant, created_by, coalesce(reject_reason, '')
                       FROM workflow.preservations WHERE id = $1",
                    &[&id],
                )
                .await?
            else {
                return Ok(());
            };
            let (number, tenant, creator, reason): (String, String, i64, String) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            let path = format!("/preservations/{id}");
            let object = format!("preservation/{id}");
            match event {
                "preservation.submitted" => {
                    let m = Mail {
                        kind: PRESERVATION_AWAITING_REVIEW,
                        object,
                        subject: format!(
                            "[Anchord] 保全待审核 Preservation {number} awaits your review"
                        ),
                        text: format!(
                            "保全 {number}（{tenant}）已提交，等待您审核。\nPreservation {number} of {tenant} was submitted and awaits your review."
                        ),
                        path,
                        link_base: base,
                    };
                    m.to_users(tx, &reviewers(tx, &tenant, creator).await?)
                        .await?;
                }
                "preservation.approved" => {
                    let m = Mail {
                        kind: PRESERVATION_APPROVED,
                        object,
                        subject: format!("[Anchord] 保全已通过 Preservation {number} approved"),
                        text: format!(
                            "您的保全 {number} 已审核通过，证据正在上链。\nYour preservation {number} was approved; its evidence is on its way to the ledger."
                        ),
                        path,
                        link_base: base,
                    };
                    m.to_users(tx, &[creator]).await?;
                }
                _ => {
                    let m = Mail {
                        kind: PRESERVATION_REJECTED,
                        object,
                        subject: format!("[Anchord] 保全被驳回 Preservation {number} rejected"),
                        text: format!(
                            "您的保全 {number} 被驳回：{reason}\nYour preservation {number} was rejected: {reason}",
                            reason = one_line(&reason, 500)
                        ),
                        path,
                        link_base: base,
                    };
                    m.to_users(tx, &[creator]).await?;
                }
            }
        }
        "contract.created" | "contract.awaiting_review" => {
            let Some(r) = tx
                .query_opt(
                    "SELECT number, tenant, created_by, title FROM workflow.contracts WHERE id = $1",
                    &[&id],
                )
                .await?
            else {
                return Ok(());
            };
            let (number, tenant, creator, title): (String, String, i64, String) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            let title = one_line(&title, 80);
            let path = format!("/contracts/{id}");
            let object = format!("contract/{id}");
            if event == "contract.created" {
                let m = Mail {
                    kind: CONTRACT_AWAITING_SIGNATURE,
                    object,
                    subject: format!(
                        "[Anchord] 合同待签署 Contract {number} awaits your signature: {title}"
                    ),
                    text: format!(
                        "合同 {number}「{title}」（{tenant}）等待您签署。\nContract {number} \"{title}\" of {tenant} awaits your signature."
                    ),
                    path,
                    link_base: base,
                };
                let signers = ids(
                    tx,
                    "SELECT user_id FROM workflow.contract_signers
                      WHERE contract_id = $1 AND status = $2 AND user_id IS NOT NULL AND user_id <> $3",
                    &[&id, &SignerStatus::Pending.as_str(), &creator],
                )
                .await?;
                m.to_users(tx, &signers).await?;
            } else {
                let m = Mail {
                    kind: CONTRACT_AWAITING_REVIEW,
                    object,
                    subject: format!(
                        "[Anchord] 合同待审核 Contract {number} awaits your review: {title}"
                    ),
                    text: format!(
                        "合同 {number}「{title}」（{tenant}）已全部签署，等待您审核。\nEvery signer signed contract {number} \"{title}\" of {tenant}; it awaits your review."
                    ),
                    path,
                    link_base: base,
                };
                m.to_users(tx, &reviewers(tx, &tenant, creator).await?)
                    .await?;
            }
        }
        _ => {
            let Some(r) = tx
                .query_opt(
                    "SELECT number, kind, institution_id, created_by, status, coalesce(refuse_reason, '')
                       FROM workflow.judicial_requests WHERE id = $1",
                    &[&id],
                )
                .await?
            else {
                return Ok(());
            };
            let (number, kind, institution, creator, status, reason): (
                String,
                String,
                String,
                i64,
                String,
                String,
            ) = (
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
            );
            let path = format!("/judicial-requests/{id}");
            let object = format!("judicial_request/{id}");
            if event == "judicial_request.created" {
                let m = Mail {
                    kind: JUDICIAL_REQUEST_RECEIVED,
                    object,
                    subject: format!(
                        "[Anchord] 收到司法申请 Judicial request {number} received ({kind})"
                    ),
                    text: format!(
                        "贵机构收到司法出证申请 {number}（{kind}）。\nYour institution received the {kind} request {number}."
                    ),
                    path,
                    link_base: base,
                };
                let users = ids(
                    tx,
                    "SELECT id FROM workflow.users WHERE role = 'institution' AND institution_id = $1",
                    &[&institution],
                )
                .await?;
                m.to_users(tx, &users).await?;
            } else {
                let outcome = if reason.is_empty() {
                    status.clone()
                } else {
                    format!("{status}: {}", one_line(&reason, 500))
                };
                let m = Mail {
                    kind: JUDICIAL_REQUEST_DECIDED,
                    object,
                    subject: format!("[Anchord] 司法申请已处理 Judicial request {number} {status}"),
                    text: format!(
                        "您的司法出证申请 {number} 已处理（{outcome}）。\nYour {kind} request {number} was decided ({outcome})."
                    ),
                    path,
                    link_base: base,
                };
                m.to_users(tx, &[creator]).await?;
            }
        }
    }
    Ok(())
}

/// Queue the invitation of an outside party to sign contract `contract_id`
/// (called by the contracts feature in the transaction that invites them):
/// the mail goes to `email`, with the one-time link `link_path` (under the
/// link base). Nothing is queued while mail is off. Returns whether the
/// mail was queued.
pub async fn invitation(
    tx: &Transaction<'_>,
    email: &str,
    contract_id: i64,
    link_path: &str,
) -> Result<bool, StoreError> {
    if !address_ok(email) || !link_path.starts_with('/') || link_path.chars().any(char::is_control)
    {
        tracing::warn!(
            contract = contract_id,
            "an invitation's address or link is unfit for mail; not mailed"
        );
        return Ok(false);
    }
    let Some(base) = link_base(tx).await? else {
        return Ok(false);
    };
    let Some(r) = tx
        .query_opt(
            "SELECT number, tenant, title FROM workflow.contracts WHERE id = $1",
            &[&contract_id],
        )
        .await?
    else {
        return Ok(false);
    };
    let (number, tenant, title): (String, String, String) =
        (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
    let title = one_line(&title, 80);
    let m = Mail {
        kind: CONTRACT_AWAITING_SIGNATURE,
        object: format!("contract/{contract_id}"),
        subject: format!(
            "[Anchord] 合同签署邀请 You are invited to sign contract {number}: {title}"
        ),
        text: format!(
            "诚邀您签署 {tenant} 的合同 {number}「{title}」。下面的链接只能使用一次。\n{tenant} invites you to sign contract {number} \"{title}\". The link below works once."
        ),
        path: link_path.to_owned(),
        link_base: base.trim_end_matches('/'),
    };
    Ok(m.to_address(tx, email).await? == 1)
}

/// A phone number the gateway may be given: an optional `+`, 6-20 digits
/// (as `contract_invitations.phone` holds them).
fn phone_ok(p: &str) -> bool {
    let digits = p.strip_prefix('+').unwrap_or(p);
    (6..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Queue the SMS inviting an outside party to sign contract `contract_id`
/// (called by the contracts feature in the transaction that invites them):
/// to `phone`, with the one-time link `link_path` under the SMS link base.
/// Nothing is queued while SMS is off. Returns whether it was queued.
pub async fn sms_invitation(
    tx: &Transaction<'_>,
    phone: &str,
    contract_id: i64,
    link_path: &str,
) -> Result<bool, StoreError> {
    if !phone_ok(phone) || !link_path.starts_with('/') || link_path.chars().any(char::is_control) {
        tracing::warn!(
            contract = contract_id,
            "an invitation's phone number or link is unfit for SMS; not sent"
        );
        return Ok(false);
    }
    let Some(base) = sms_link_base(tx).await? else {
        return Ok(false);
    };
    let Some(r) = tx
        .query_opt(
            "SELECT number, tenant, title FROM workflow.contracts WHERE id = $1",
            &[&contract_id],
        )
        .await?
    else {
        return Ok(false);
    };
    let (number, tenant, title): (String, String, String) =
        (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
    let text = format!(
        "[Anchord] {tenant} 邀请您签署合同 {number}「{}」 invites you to sign contract {number}. One-time link 一次性链接: {}{link_path}",
        one_line(&title, 40),
        base.trim_end_matches('/'),
    );
    let n = tx
        .execute(
            "INSERT INTO workflow.mail_outbox (message_id, user_id, recipient, kind, object, subject, body, channel)
             VALUES (gen_random_uuid()::text, NULL, $1, $2, $3, '', $4, 'sms')",
            &[
                &phone,
                &CONTRACT_AWAITING_SIGNATURE,
                &format!("contract/{contract_id}"),
                &text,
            ],
        )
        .await?;
    Ok(n == 1)
}

// ---------------------------------------------------------------------------
// Preferences
// ---------------------------------------------------------------------------

/// The kinds `user` turned on or off (no row: on).
pub async fn prefs<C: GenericClient + Sync>(
    c: &C,
    user: i64,
) -> Result<Vec<(String, bool)>, StoreError> {
    let rows = c
        .query(
            "SELECT kind, enabled FROM workflow.notification_prefs WHERE user_id = $1",
            &[&user],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Set `user`'s choice for each kind of `choices`.
pub async fn set_prefs(
    tx: &Transaction<'_>,
    user: i64,
    choices: &[(&str, bool)],
) -> Result<(), StoreError> {
    for (kind, enabled) in choices {
        tx.execute(
            "INSERT INTO workflow.notification_prefs (user_id, kind, enabled) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, kind) DO UPDATE SET enabled = EXCLUDED.enabled",
            &[&user, kind, enabled],
        )
        .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The outbox (mailer.rs)
// ---------------------------------------------------------------------------

/// A claimed message (mail or SMS).
#[derive(Debug)]
pub struct Outgoing {
    pub id: i64,
    pub message_id: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attempts: i32,
}

/// Claim up to `limit` due messages of `channel` in one short statement
/// that moves their next attempt `lease_s` ahead (another replica, or a
/// restart, retries a claim that never reports).
pub async fn claim<C: GenericClient + Sync>(
    c: &C,
    channel: Channel,
    limit: i64,
    lease_s: f64,
) -> Result<Vec<Outgoing>, StoreError> {
    let rows = c
        .query(
            "WITH pick AS (
                SELECT id FROM workflow.mail_outbox
                 WHERE state = 'pending' AND next_attempt_at <= now() AND channel = $3
                 ORDER BY next_attempt_at, id LIMIT $1
                   FOR UPDATE SKIP LOCKED)
             UPDATE workflow.mail_outbox m SET next_attempt_at = now() + make_interval(secs => $2)
               FROM pick WHERE m.id = pick.id
             RETURNING m.id, m.message_id, m.recipient, m.subject, m.body, m.attempts",
            &[&limit, &lease_s, &channel.as_str()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Outgoing {
                id: r.try_get(0)?,
                message_id: r.try_get(1)?,
                recipient: r.try_get(2)?,
                subject: r.try_get(3)?,
                body: r.try_get(4)?,
                attempts: r.try_get(5)?,
            })
        })
        .collect()
}

/// Record a sent mail.
pub async fn sent<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    attempts: i32,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE workflow.mail_outbox
            SET state = 'sent', attempts = $2, last_error = NULL, sent_at = now(), finished_at = now()
          WHERE id = $1 AND state = 'pending'",
        &[&id, &attempts],
    )
    .await?;
    Ok(())
}

/// Record a failed attempt: retried after `delay_s`, or `failed` when
/// `give_up`.
pub async fn attempt_failed<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    attempts: i32,
    error: &str,
    give_up: bool,
    delay_s: f64,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE workflow.mail_outbox
            SET state = CASE WHEN $4 THEN 'failed' ELSE 'pending' END, attempts = $2, last_error = $3,
                next_attempt_at = now() + make_interval(secs => $5),
                finished_at = CASE WHEN $4 THEN now() END
          WHERE id = $1 AND state = 'pending'",
        &[&id, &attempts, &error, &give_up, &delay_s],
    )
    .await?;
    Ok(())
}

/// Mails waiting to be sent.
pub async fn pending<C: GenericClient + Sync>(c: &C) -> Result<i64, StoreError> {
    Ok(c.query_one(
        "SELECT count(*) FROM workflow.mail_outbox WHERE state = 'pending' AND channel = 'email'",
        &[],
    )
    .await?
    .try_get(0)?)
}

/// Delete at most `limit` messages of `channel` that finished (sent or
/// given up) more than `retention_days` ago, oldest first; returns how
/// many went. Pending messages are never deleted.
pub async fn purge<C: GenericClient + Sync>(
    c: &C,
    channel: Channel,
    retention_days: i32,
    limit: i64,
) -> Result<u64, StoreError> {
    Ok(c.execute(
        "DELETE FROM workflow.mail_outbox WHERE id IN (
            SELECT id FROM workflow.mail_outbox
             WHERE channel = $1 AND state <> 'pending'
               AND finished_at < now() - make_interval(days => $2)
             ORDER BY finished_at LIMIT $3)",
        &[&channel.as_str(), &retention_days, &limit],
    )
    .await?)
}

/// The outbox's size per channel and state (only the pairs present).
pub async fn depth<C: GenericClient + Sync>(
    c: &C,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    c.query(
        "SELECT channel, state, count(*) FROM workflow.mail_outbox GROUP BY channel, state",
        &[],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn header_text_loses_its_line_breaks_and_is_bounded() {
        assert_eq!(
            one_line("Loan\r\nBcc: evil@example.com\t x", 200),
            "Loan Bcc: evil@example.com x"
        );
        assert_eq!(one_line("\r\n", 10), "");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert!(!one_line("a\u{85}b\u{2028}c", 10).contains('\u{85}'));
    }
}
