//! The preservation certificate (电子数据保全证书): one A4 PDF page per
//! evidence item with the submitter, external id, hash, times, block,
//! checkpoint and anchors, and a QR code with the verification link.
//!
//! Chinese text is set in a CJK font read from disk (default Debian's
//! `fonts-noto-cjk`, Simplified Chinese face of the collection), subsetted
//! to the glyphs used (`subsetter`) and embedded as a CID font with
//! Identity-H encoding and a ToUnicode map, so that text extraction
//! (`pdftotext`) and copy-paste return the original characters. The PDF is
//! written with `pdf-writer`; the QR code is drawn as filled squares.

use std::collections::BTreeMap;

use anchord_core::bundle::{AnchorState, Bundle, TrustedKeys, verify_bundle};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// Debian's `fonts-noto-cjk` collection.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("font: {0}")]
    Font(String),
    #[error("the font has no glyph for {0:?}")]
    MissingGlyph(char),
    #[error("QR code: {0}")]
    Qr(String),
}

/// A font collection and the face to use.
#[derive(Debug)]
pub struct CjkFont {
    data: Vec<u8>,
    index: u32,
}

impl CjkFont {
    /// Load a font file (TTF/OTF/TTC). In a collection, prefer the face
    /// whose family name ends in "SC" (Simplified Chinese).
    pub fn load(path: &std::path::Path) -> Result<Self, CertificateError> {
        let data = std::fs::read(path)
            .map_err(|e| CertificateError::Font(format!("{}: {e}", path.display())))?;
        let n = ttf_parser::fonts_in_collection(&data).unwrap_or(1);
        let mut index = 0;
        for i in 0..n {
            if let Ok(face) = ttf_parser::Face::parse(&data, i) {
                let sc = face.names().into_iter().any(|name| {
                    name.name_id == ttf_parser::name_id::FAMILY
                        && name.to_string().is_some_and(|s| s.ends_with(" SC"))
                });
                if sc {
                    index = i;
                    break;
                }
            }
        }
        ttf_parser::Face::parse(&data, index)
            .map_err(|e| CertificateError::Font(format!("{}: {e}", path.display())))?;
        Ok(CjkFont { data, index })
    }
}

/// Issues certificates for a server: loads the font once, on first use
/// (a missing font makes certificates unavailable, not the server), and
/// renders off the async worker threads. The verifier's API and the
/// workflow API share it.
#[derive(Debug)]
pub struct Issuer {
    font_path: std::path::PathBuf,
    font: tokio::sync::OnceCell<std::sync::Arc<CjkFont>>,
}

/// Why [`Issuer::pdf`] made no certificate.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The configured font cannot be loaded (tried again on the next call).
    #[error("certificate font: {0}")]
    FontUnavailable(String),
    #[error("certificate: {0}")]
    Render(String),
    /// The bundle does not verify against the deployment's keys: no
    /// certificate is issued for it.
    #[error("the bundle does not verify ({0}); no certificate is issued")]
    NotVerified(String),
}

impl Issuer {
    pub fn new(font_path: impl Into<std::path::PathBuf>) -> Self {
        Issuer {
            font_path: font_path.into(),
            font: tokio::sync::OnceCell::new(),
        }
    }

    /// The PDF for `bundle`, issued now, with `verify_url` printed and in
    /// the QR code. The bundle is verified first against the keys it
    /// carries, which on a server are the deployment's own configured keys
    /// (its prover fills them in from the configuration; a bundle is never
    /// taken from a client here): a bundle that does not verify gets no
    /// certificate ([`IssueError::NotVerified`]), and the certificate says
    /// its anchors were not checked online.
    pub async fn pdf(&self, bundle: Bundle, verify_url: String) -> Result<Vec<u8>, IssueError> {
        self.pdf_with(bundle, verify_url, Vec::new()).await
    }

    /// [`Issuer::pdf`] with `extra` lines after the certificate's own (a
    /// contract's signers, say), continued on further pages as needed.
    pub async fn pdf_with(
        &self,
        bundle: Bundle,
        verify_url: String,
        extra: Vec<(f32, String)>,
    ) -> Result<Vec<u8>, IssueError> {
        let keys = TrustedKeys::from_bundle(&bundle)
            .map_err(|e| IssueError::NotVerified(e.to_string()))?;
        verify_bundle(&bundle, &keys, None).map_err(|e| IssueError::NotVerified(e.to_string()))?;
        let path = self.font_path.clone();
        let font = self
            .font
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || CjkFont::load(&path).map(std::sync::Arc::new))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(IssueError::FontUnavailable)?
            .clone();
        let issued_at_us = anchord_core::time::unix_micros(std::time::SystemTime::now());
        tokio::task::spawn_blocking(move || {
            let sealer = bundle
                .keys
                .sealer
                .split('+')
                .take(2)
                .collect::<Vec<_>>()
                .join("+");
            let input = CertificateInput {
                bundle: &bundle,
                verify_url: &verify_url,
                issued_at_us,
                verified: Verified {
                    verified_at_us: issued_at_us,
                    policy: format!("this deployment's configured keys (sealer {sealer})"),
                    trust_file: "trust.toml".into(),
                    online: vec![],
                },
            };
            let mut all = lines(&input);
            all.extend(extra);
            render_lines(&all, &font, Some(&verify_url))
        })
        .await
        .map_err(|e| IssueError::Render(format!("task: {e}")))?
        .map_err(|e| IssueError::Render(e.to_string()))
    }
}

impl Issuer {
    /// A one-page PDF of `lines` ([`render_lines`]) in the issuer's font,
    /// rendered off the async threads.
    pub async fn text_pdf(&self, lines: Vec<(f32, String)>) -> Result<Vec<u8>, IssueError> {
        let font = self.font().await?;
        tokio::task::spawn_blocking(move || render_lines(&lines, &font, None))
            .await
            .map_err(|e| IssueError::Render(format!("task: {e}")))?
            .map_err(|e| IssueError::Render(e.to_string()))
    }

    async fn font(&self) -> Result<std::sync::Arc<CjkFont>, IssueError> {
        let path = self.font_path.clone();
        Ok(self
            .font
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || CjkFont::load(&path).map(std::sync::Arc::new))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(IssueError::FontUnavailable)?
            .clone())
    }
}

/// What the certificate shows besides the bundle.
#[derive(Debug)]
pub struct CertificateInput<'a> {
    pub bundle: &'a Bundle,
    /// The verification link (also in the QR code).
    pub verify_url: &'a str,
    /// When the certificate was issued, microseconds since the epoch.
    pub issued_at_us: i64,
    /// What was verified before issuing: a certificate prints only
    /// verified facts.
    pub verified: Verified,
}

/// How the bundle was verified before the certificate was issued.
#[derive(Clone, Debug)]
pub struct Verified {
    /// When, µs since the epoch.
    pub verified_at_us: i64,
    /// Against what (the trust policy, with its fingerprint).
    pub policy: String,
    /// The trust policy's file name, for the verification command printed.
    pub trust_file: String,
    /// Anchors confirmed on their chains, at the policy's endpoints.
    pub online: Vec<crate::online::Confirmed>,
}

/// `YYYY-MM-DD HH:MM:SS` in UTC+offset hours, with microseconds if non-zero.
pub fn format_time(us: i64, offset_hours: i64) -> String {
    let secs = us.div_euclid(1_000_000) + offset_hours * 3600;
    let frac = us.rem_euclid(1_000_000);
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return format!("{us} µs");
    };
    let base = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if frac == 0 {
        base
    } else {
        format!("{base}.{frac:06}")
    }
}

fn both_times(us: i64) -> String {
    format!(
        "{} (北京时间) / {} UTC",
        format_time(us, 8),
        format_time(us, 0)
    )
}

/// The certificate's lines: (font size, text).
pub fn lines(input: &CertificateInput<'_>) -> Vec<(f32, String)> {
    let b = input.bundle;
    let e = &b.entry;
    let mut l = vec![
        (22.0, "电子数据保全证书".to_owned()),
        (9.0, "Electronic Data Preservation Certificate".to_owned()),
        (9.0, String::new()),
        (
            11.0,
            format!("证书编号 No.: {}", hex::encode(&b.leaf_hash[..16])),
        ),
        (11.0, format!("提交方 Submitter: {}", e.tenant)),
        (11.0, format!("业务编号 External ID: {}", e.external_id)),
        (11.0, format!("摘要算法 Algorithm: {}", e.hash_alg)),
        (11.0, "数据摘要 Evidence hash:".to_owned()),
        (9.0, format!("    {}", hex::encode(&e.evidence_hash))),
        (
            11.0,
            format!("保全时间 Preserved at: {}", both_times(e.received_at_us)),
        ),
        (11.0, format!("账本序号 Ledger seq: {}", e.seq)),
        (11.0, format!("区块高度 Block height: {}", b.block.height)),
        (
            11.0,
            format!("封块时间 Sealed at: {}", both_times(b.block.sealed_at_us)),
        ),
        (11.0, "区块哈希 Block hash:".to_owned()),
        (9.0, format!("    {}", hex::encode(b.block.hash))),
        (
            11.0,
            format!(
                "检查点 Checkpoint: {} 第 {} 号 (size {})",
                b.checkpoint.origin, b.checkpoint.size, b.checkpoint.size
            ),
        ),
        (9.0, format!("    root {}", hex::encode(b.checkpoint.root))),
        (11.0, "司法链锚定 Anchors:".to_owned()),
    ];
    match b.anchor.status {
        AnchorState::Anchored => {
            // One receipt over three lines: a transaction id alone is up to
            // 66 characters, which is all an A4 line holds at this size.
            for r in &b.anchor.receipts {
                let checked = input.verified.online.iter().find(|c| c.target == r.target);
                l.push((
                    9.0,
                    format!(
                        "    {}: {} {} — {}",
                        r.target,
                        r.chain_kind,
                        r.chain_id,
                        match checked {
                            Some(c) => format!(
                                "已在线核验 checked online {} UTC",
                                format_time(
                                    c.checked_at_us - c.checked_at_us.rem_euclid(1_000_000),
                                    0
                                )
                            ),
                            None => "未在线核验 not checked online".to_owned(),
                        }
                    ),
                ));
                l.push((9.0, format!("      交易 tx {}", r.tx_id)));
                l.push((
                    9.0,
                    format!(
                        "      区块 block {} ({})",
                        r.block_number,
                        format_time(r.block_time_us, 8)
                    ),
                ));
            }
        }
        AnchorState::Pending => l.push((
            9.0,
            format!(
                "    待锚定 pending, 预计 expected {}",
                b.anchor
                    .expected_at_us
                    .map_or_else(|| "-".to_owned(), |t| format_time(t, 8))
            ),
        )),
    }
    let v = &input.verified;
    l.extend([
        (
            9.0,
            format!(
                "核验 Verified {} UTC against {}",
                format_time(v.verified_at_us - v.verified_at_us.rem_euclid(1_000_000), 0),
                v.policy
            ),
        ),
        (9.0, String::new()),
        (11.0, "验证方式 How to verify:".to_owned()),
        (9.0, "    扫描二维码或访问 Scan the QR code or open:".to_owned()),
        (8.0, format!("    {}", input.verify_url)),
        (
            9.0,
            "    法院验证 A court runs, with its own trust policy (信任策略, obtained out of band):".to_owned(),
        ),
        (
            8.0,
            format!(
                "    anchord verify --trust {} --bundle bundle.json --file <原始文件 file> --online",
                v.trust_file
            ),
        ),
        (9.0, String::new()),
        (9.0, format!("出具时间 Issued at: {}", both_times(input.issued_at_us))),
    ]);
    l
}

/// Where a line's text starts on the page (points from the left edge).
pub const TEXT_LEFT: f32 = 56.0;
/// How wide a line's text may be (points): from [`TEXT_LEFT`] to 20 pt
/// inside the frame's right edge (x = 559 on the 595 pt A4 page).
pub const TEXT_WIDTH: f32 = 483.0;

/// Whether a line may break after `c`: after a space, after a CJK
/// character (ideographs, kana, hangul, fullwidth forms and their
/// punctuation), and after the separators of paths, URLs and names.
fn breaks_after(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '/' | '\\' | '-' | '_' | '.' | ',' | ';' | ':' | '&' | '?' | '=' | ')' | ']'
        )
        || matches!(u32::from(c), 0x2E80..=0x9FFF | 0xA960..=0xA97F | 0xAC00..=0xD7FF | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF | 0x20000..=0x3FFFF)
}

/// `(size, text)` lines wrapped to [`TEXT_WIDTH`] by measured width:
/// `advance(c)` is a character's advance in ems. A line breaks at its last
/// break opportunity ([`breaks_after`]) that fits, else at any character
/// (a hash, a long token); every character is kept, in order, and every
/// line holds at least one.
pub fn wrap_lines(lines: &[(f32, String)], advance: impl Fn(char) -> f32) -> Vec<(f32, String)> {
    let mut out = Vec::with_capacity(lines.len());
    for (size, text) in lines {
        let max = TEXT_WIDTH / size.max(1.0);
        // The line being filled, its width (ems) and its last break: the
        // byte offset after it and the width up to it.
        let (mut line, mut width, mut last_break) = (String::new(), 0.0f32, None);
        for c in text.chars() {
            let w = advance(c);
            if width + w > max && !line.is_empty() {
                if let Some((at, upto)) = last_break.take() {
                    // At the last break; the rest begins the next line.
                    let rest = line.split_off(at);
                    out.push((*size, std::mem::replace(&mut line, rest)));
                    width -= upto;
                }
                if width + w > max && !line.is_empty() {
                    // No break that fits: at this character.
                    out.push((*size, std::mem::take(&mut line)));
                    width = 0.0;
                }
            }
            line.push(c);
            width += w;
            if breaks_after(c) {
                last_break = Some((line.len(), width));
            }
        }
        out.push((*size, line));
    }
    out
}

/// Render the certificate as a PDF.
pub fn render(input: &CertificateInput<'_>, font: &CjkFont) -> Result<Vec<u8>, CertificateError> {
    render_lines(&lines(input), font, Some(input.verify_url))
}

/// Render one A4 page of `(font size, text)` lines in the CJK font (a
/// title over 20 pt is centred), framed, with a QR code of `qr` when given:
/// the certificate's layout, for other documents too (the workflow's
/// comparison reports).
pub fn render_lines(
    lines: &[(f32, String)],
    font: &CjkFont,
    qr: Option<&str>,
) -> Result<Vec<u8>, CertificateError> {
    let face = ttf_parser::Face::parse(&font.data, font.index)
        .map_err(|e| CertificateError::Font(e.to_string()))?;
    let upem = f32::from(face.units_per_em());
    let is_cff = face.tables().cff.is_some();

    // Map every character to its glyph, remapped into the subset.
    let mut remapper = subsetter::GlyphRemapper::new();
    let mut to_unicode: BTreeMap<u16, char> = BTreeMap::new();
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    // A character the font lacks (an emoji, a rare ideograph, a control or
    // formatting character in a file name or field someone typed) is drawn
    // as U+FFFD, or `?`: text from users must never make a document fail.
    let fallback = ['\u{FFFD}', '?']
        .into_iter()
        .find_map(|f| face.glyph_index(f).map(|g| (f, g)));
    // Text wider than the frame (a long file name, hash, URL or Chinese
    // name) goes on as many lines as it needs, measured in this font.
    let advance = |c: char| {
        face.glyph_index(c)
            .or(fallback.map(|f| f.1))
            .and_then(|g| face.glyph_hor_advance(g))
            .map_or(1.0, |a| f32::from(a) / upem)
    };
    let wrapped = wrap_lines(lines, advance);
    let lines = wrapped.as_slice();
    for (_, text) in lines {
        let mut bytes = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let (c, gid) = match face.glyph_index(c) {
                Some(g) => (c, g),
                None => fallback.ok_or(CertificateError::MissingGlyph(c))?,
            };
            let cid = remapper.remap(gid.0);
            to_unicode.insert(cid, c);
            bytes.extend_from_slice(&cid.to_be_bytes());
        }
        encoded.push(bytes);
    }
    let subset = subsetter::subset(&font.data, font.index, &remapper)
        .map_err(|e| CertificateError::Font(format!("subsetting: {e}")))?;
    let widths: Vec<f32> = remapper
        .remapped_gids()
        .map(|old| {
            f32::from(
                face.glyph_hor_advance(ttf_parser::GlyphId(old))
                    .unwrap_or(0),
            ) * 1000.0
                / upem
        })
        .collect();

    // Lines go on as many pages as they need: the first page keeps its
    // lower part for the QR code, when there is one.
    let mut paged: Vec<Vec<usize>> = vec![Vec::new()];
    let mut y = 780.0;
    for (i, (size, _)) in lines.iter().enumerate() {
        let floor = if paged.len() == 1 && qr.is_some() {
            190.0
        } else {
            50.0
        };
        if y - size * 1.6 < floor && !paged.last().is_some_and(Vec::is_empty) {
            paged.push(Vec::new());
            y = 780.0;
        }
        y -= size * 1.6;
        if let Some(p) = paged.last_mut() {
            p.push(i);
        }
    }

    let mut ids = (1..).map(Ref::new);
    let mut next = || ids.next().unwrap_or(Ref::new(1));
    let (catalog, pages) = (next(), next());
    let (type0, cid, descriptor, file, cmap) = (next(), next(), next(), next(), next());
    let page_ids: Vec<(Ref, Ref)> = paged.iter().map(|_| (next(), next())).collect();
    let font_name = Name(b"F1");
    let base = Name(b"AAAAAA+NotoSansCJK");

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages)
        .kids(page_ids.iter().map(|(page, _)| *page))
        .count(page_ids.len() as i32);
    let a4 = Rect::new(0.0, 0.0, 595.0, 842.0);
    for (page, content_id) in &page_ids {
        let mut p = pdf.page(*page);
        p.media_box(a4).parent(pages).contents(*content_id);
        p.resources().fonts().pair(font_name, type0);
        p.finish();
    }

    pdf.type0_font(type0)
        .base_font(base)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(cmap);
    let mut c = pdf.cid_font(cid);
    c.subtype(if is_cff {
        CidFontType::Type0
    } else {
        CidFontType::Type2
    })
    .base_font(base)
    .system_info(SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    })
    .font_descriptor(descriptor)
    .default_width(1000.0);
    if !is_cff {
        c.cid_to_gid_map_predefined(Name(b"Identity"));
    }
    c.widths().consecutive(0, widths);
    c.finish();
    let bbox = face.global_bounding_box();
    let s = |v: i16| f32::from(v) * 1000.0 / upem;
    let mut d = pdf.font_descriptor(descriptor);
    d.name(base)
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            s(bbox.x_min),
            s(bbox.y_min),
            s(bbox.x_max),
            s(bbox.y_max),
        ))
        .italic_angle(0.0)
        .ascent(s(face.ascender()))
        .descent(s(face.descender()))
        .cap_height(s(face.capital_height().unwrap_or(face.ascender())))
        .stem_v(80.0);
    if is_cff {
        d.font_file3(file);
    } else {
        d.font_file2(file);
    }
    d.finish();
    let mut f = pdf.stream(file, &subset);
    if is_cff {
        f.pair(Name(b"Subtype"), Name(b"OpenType"));
    }
    f.finish();
    let info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"UCS"),
        supplement: 0,
    };
    let mut um = UnicodeCmap::new(Name(b"Anchord-UTF16"), info);
    for (cid, ch) in &to_unicode {
        um.pair(*cid, *ch);
    }
    let um = um.finish();
    pdf.cmap(cmap, um.as_slice())
        .name(Name(b"Anchord-UTF16"))
        .system_info(info);

    // Each page: a frame and its lines; the first, the QR code.
    let mut contents: Vec<Content> = Vec::new();
    for on_page in &paged {
        let mut content = Content::new();
        content.set_line_width(1.5);
        content.rect(36.0, 36.0, 523.0, 770.0);
        content.stroke();
        let mut y = 780.0;
        for &i in on_page {
            let (Some((size, text)), Some(bytes)) = (lines.get(i), encoded.get(i)) else {
                continue;
            };
            y -= size * 1.6;
            if text.is_empty() {
                continue;
            }
            let x = if *size > 20.0 {
                // Centre the title.
                let w: f32 = text.chars().map(advance).sum::<f32>() * size;
                ((595.0 - w) / 2.0).max(TEXT_LEFT)
            } else {
                TEXT_LEFT
            };
            content.begin_text();
            content.set_font(font_name, *size);
            content.next_line(x, y);
            content.show(Str(bytes));
            content.end_text();
        }
        contents.push(content);
    }
    let mut contents = contents.into_iter();
    let mut content = contents.next().unwrap_or_else(Content::new);
    let content_id = page_ids.first().map_or(Ref::new(1), |p| p.1);
    for ((_, id), rest) in page_ids.iter().skip(1).zip(contents) {
        pdf.stream(*id, &rest.finish());
    }
    let Some(qr) = qr else {
        pdf.stream(content_id, &content.finish());
        return Ok(pdf.finish());
    };
    let qr = qrcode::QrCode::new(qr.as_bytes()).map_err(|e| CertificateError::Qr(e.to_string()))?;
    let n = qr.width();
    let module = 120.0 / n as f32;
    let (qx, qy) = (56.0, 60.0);
    content.set_fill_gray(0.0);
    for (i, color) in qr.to_colors().into_iter().enumerate() {
        if color == qrcode::Color::Dark {
            let (col, row) = ((i % n) as f32, (i / n) as f32);
            content.rect(
                qx + col * module,
                qy + (n as f32 - 1.0 - row) * module,
                module,
                module,
            );
        }
    }
    content.fill_nonzero();
    pdf.stream(content_id, &content.finish());
    Ok(pdf.finish())
}
