//! Same-site references of built pages: the files a page makes the browser fetch (scripts,
//! stylesheets, images, preloads, icons, media, frames, `url()`s and `@import`s in CSS).
//!
//! Pure: bytes in, data out, no I/O. Two steps, so the caller decides what "exists" means (the
//! build folder, or files the bucket still retains):
//!
//! 1. [`html_references`] / [`css_references`] list the references as written, in document order;
//! 2. [`resolve`] turns one of them into the build-relative key it names, or `None` when it is
//!    not a file of this site.
//!
//! HTML is read with `lol_html` (streaming, content handlers used read-only, output discarded);
//! CSS with the `cssparser` tokenizer.
//!
//! Checked in HTML: `<script src>`; `<link href>` when `rel` has `stylesheet`, `preload`
//! (also its `imagesrcset`), `modulepreload`, `icon`/`apple-touch-icon`/
//! `apple-touch-icon-precomposed`/`mask-icon`, or `manifest`; `<img src srcset>`,
//! `<source src srcset>`, `<video src poster>`, `<audio src>`, `<track src>`, `<iframe src>`,
//! `<embed src>`, `<object data>`, `<input type=image src>`, SVG `<image>`/`<use>` `href`
//! (or `xlink:href`); `<style>` blocks and `style=""` attributes; the markup inside
//! `<noscript>` and `<template>` (declarative shadow DOM is rendered at once). The first
//! `<base href>` is returned for [`resolve`].
//!
//! Not checked: `<a href>`, `<area href>`, `<form action>` (navigation: links to pages generated
//! or served elsewhere — redirects, other apps behind the same domain, rewrites — are common and
//! would drown real problems in warnings), `<meta>` (`og:image` & co. are fetched by other sites,
//! usually as absolute URLs), `rel=prefetch`/`preconnect`/`alternate`/`canonical`, import maps,
//! `<iframe srcdoc>`, and lazy-loading conventions such as `data-src`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;

use cssparser::{ParseError, Parser, ParserInput, Token};
use lol_html::html_content::{Element, TextChunk};
use lol_html::{ElementContentHandlers, HtmlRewriter, Selector, Settings};

/// What kind of reference it is (which element or CSS construct it came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `<script src>`
    Script,
    /// `<link rel=stylesheet href>`
    Stylesheet,
    /// `<link rel=preload href>` and its `imagesrcset`
    Preload,
    /// `<link rel=modulepreload href>`
    ModulePreload,
    /// `<link rel=icon|apple-touch-icon|mask-icon href>`
    Icon,
    /// `<link rel=manifest href>`
    Manifest,
    /// `<img src srcset>`, `<source srcset>`, `<video poster>`, `<input type=image src>`,
    /// SVG `<image href>` and `<use href>`
    Image,
    /// `<video src>`, `<audio src>`, `<source src>`, `<track src>`
    Media,
    /// `<iframe src>`
    Frame,
    /// `<object data>`, `<embed src>`
    Object,
    /// `url(…)` and `image-set("…")` in CSS (stylesheets, `<style>`, `style=""`)
    CssUrl,
    /// `@import "…"` / `@import url(…)` in CSS
    CssImport,
}

impl Kind {
    /// A short lowercase name for messages: `script`, `stylesheet`, `css url`…
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Script => "script",
            Kind::Stylesheet => "stylesheet",
            Kind::Preload => "preload",
            Kind::ModulePreload => "modulepreload",
            Kind::Icon => "icon",
            Kind::Manifest => "manifest",
            Kind::Image => "image",
            Kind::Media => "media",
            Kind::Frame => "iframe",
            Kind::Object => "object",
            Kind::CssUrl => "css url",
            Kind::CssImport => "css @import",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reference, as the browser reads it: HTML entities decoded, CSS escapes decoded,
/// surrounding whitespace removed, otherwise as written (not resolved, not percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: Kind,
    pub raw: String,
    /// Byte offset in the input where it was found: the start of the element's start tag for
    /// attributes, the start of the CSS token for CSS. For messages: see [`line_number`].
    pub offset: usize,
}

/// The references of one HTML page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRefs {
    /// The `href` of the first `<base href>`, entity-decoded, to pass to [`resolve`].
    pub base_href: Option<String>,
    /// In document order; duplicates are kept.
    pub refs: Vec<Reference>,
}

/// The HTML parser gave up (it is not expected to: the parser runs in its lenient mode and
/// without a memory limit, so this is a safety net for future `lol_html` errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not parse the HTML: {}", self.0)
    }
}

impl std::error::Error for Error {}

/// The 1-based line of a byte offset (e.g. [`Reference::offset`]) in `input`.
pub fn line_number(input: &[u8], offset: usize) -> usize {
    let end = offset.min(input.len());
    1 + input[..end].iter().filter(|&&b| b == b'\n').count()
}

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

/// The selectors, parsed once per process (the rewriter borrows them).
struct Selectors {
    any: Selector,
    style: Selector,
    noscript: Selector,
}

fn selectors() -> &'static Selectors {
    static SELECTORS: OnceLock<Selectors> = OnceLock::new();
    SELECTORS.get_or_init(|| {
        let s = |css: &str| css.parse::<Selector>().expect("valid selector");
        Selectors {
            any: s("*"),
            style: s("style"),
            noscript: s("noscript"),
        }
    })
}

#[derive(Default)]
struct Collector {
    base_href: Option<String>,
    refs: Vec<Reference>,
}

impl Collector {
    fn push(&mut self, kind: Kind, value: &str, offset: usize) {
        let value = decode_entities(value);
        let value = value.trim_matches(is_html_space);
        if !value.is_empty() {
            self.refs.push(Reference {
                kind,
                raw: value.to_owned(),
                offset,
            });
        }
    }

    fn push_attr(&mut self, el: &Element<'_, '_>, name: &str, kind: Kind, offset: usize) {
        if let Some(v) = el.get_attribute(name) {
            self.push(kind, &v, offset);
        }
    }

    fn push_srcset(&mut self, el: &Element<'_, '_>, name: &str, kind: Kind, offset: usize) {
        if let Some(v) = el.get_attribute(name) {
            for url in srcset_urls(&decode_entities(&v)) {
                self.refs.push(Reference {
                    kind,
                    raw: url.to_owned(),
                    offset,
                });
            }
        }
    }
}

/// A text node (`<style>`, `<noscript>`) arriving in chunks.
#[derive(Default)]
struct TextBuf {
    start: Option<usize>,
    text: String,
}

impl TextBuf {
    /// Appends the chunk; returns the whole text and its offset after the last chunk.
    fn take(&mut self, chunk: &TextChunk<'_>) -> Option<(usize, String)> {
        if self.start.is_none() {
            self.start = Some(chunk.source_location().bytes().start);
        }
        self.text.push_str(chunk.as_str());
        if chunk.last_in_text_node() {
            Some((
                self.start.take().unwrap_or(0),
                std::mem::take(&mut self.text),
            ))
        } else {
            None
        }
    }
}

/// The references of an HTML page (all of them: [`resolve`] tells which are same-site files),
/// and its `<base href>`.
///
/// The markup is read as a browser with scripting enabled reads it, except that the content of
/// `<noscript>` is read as markup too. The encoding is UTF-8 unless a `<meta charset>` says
/// otherwise. Malformed markup is not an error.
pub fn html_references(html: &[u8]) -> Result<PageRefs, Error> {
    let mut out = Collector::default();
    collect_html(html, 0, true, &mut out)?;
    Ok(PageRefs {
        base_href: out.base_href,
        refs: out.refs,
    })
}

fn collect_html(html: &[u8], shift: usize, top: bool, out: &mut Collector) -> Result<(), Error> {
    let sel = selectors();
    let out = RefCell::new(out);
    let style = RefCell::new(TextBuf::default());
    let noscript = RefCell::new(TextBuf::default());
    let nested_error = RefCell::new(None::<Error>);

    // Each handler borrows `out` only for its own duration; the rewriter calls them one at a
    // time, so the borrows never overlap (the nested <noscript> parse gets its own collector).
    let at = |el: &Element<'_, '_>| shift + el.source_location().bytes().start;

    // One handler for every element, dispatching on the tag name: `style=""` can be on any
    // element, and an attribute selector (`[style]`) next to a dozen tag selectors costs the
    // parser more than a single `*`.
    let element = |el: &mut Element<'_, '_>| {
        let at = at(el);
        let mut out = out.borrow_mut();
        match el.tag_name().as_str() {
            "script" => out.push_attr(el, "src", Kind::Script, at),
            "link" => {
                if let Some(kind) = el.get_attribute("rel").as_deref().and_then(link_kind) {
                    out.push_attr(el, "href", kind, at);
                    if kind == Kind::Preload {
                        out.push_srcset(el, "imagesrcset", kind, at);
                    }
                }
            }
            "img" => {
                out.push_attr(el, "src", Kind::Image, at);
                out.push_srcset(el, "srcset", Kind::Image, at);
            }
            "source" => {
                out.push_attr(el, "src", Kind::Media, at);
                out.push_srcset(el, "srcset", Kind::Image, at);
            }
            "video" => {
                out.push_attr(el, "src", Kind::Media, at);
                out.push_attr(el, "poster", Kind::Image, at);
            }
            "audio" | "track" => out.push_attr(el, "src", Kind::Media, at),
            "iframe" => out.push_attr(el, "src", Kind::Frame, at),
            "embed" => out.push_attr(el, "src", Kind::Object, at),
            "object" => out.push_attr(el, "data", Kind::Object, at),
            "input" => {
                let is_image = el
                    .get_attribute("type")
                    .is_some_and(|t| t.trim_matches(is_html_space).eq_ignore_ascii_case("image"));
                if is_image {
                    out.push_attr(el, "src", Kind::Image, at);
                }
            }
            // SVG
            "image" | "use" => {
                let name = if el.has_attribute("href") {
                    "href"
                } else {
                    "xlink:href"
                };
                out.push_attr(el, name, Kind::Image, at);
            }
            "base" if top && out.base_href.is_none() => {
                if let Some(href) = el.get_attribute("href") {
                    let href = decode_entities(&href);
                    out.base_href = Some(href.trim_matches(is_html_space).to_owned());
                }
            }
            _ => {}
        }
        if let Some(style) = el.get_attribute("style") {
            css_into(&decode_entities(&style), at, true, &mut out.refs);
        }
        Ok(())
    };

    let settings = Settings::new()
        // Lenient: never fail on markup that is ambiguous for a streaming parser.
        .with_strict(false)
        .with_adjust_charset_on_meta_tag(true)
        .append_element_content_handler((
            Cow::Borrowed(&sel.any),
            ElementContentHandlers::default().element(element),
        ))
        .append_element_content_handler((
            Cow::Borrowed(&sel.style),
            ElementContentHandlers::default().text(|chunk: &mut TextChunk<'_>| {
                if let Some((start, css)) = style.borrow_mut().take(chunk) {
                    css_into(&css, shift + start, false, &mut out.borrow_mut().refs);
                }
                Ok(())
            }),
        ))
        .append_element_content_handler((
            Cow::Borrowed(&sel.noscript),
            ElementContentHandlers::default().text(|chunk: &mut TextChunk<'_>| {
                // With scripting on, <noscript> is raw text; what it would show without
                // scripts is still the site's markup, so read it as HTML.
                if let Some((start, inner)) = noscript.borrow_mut().take(chunk) {
                    let mut nested = Collector::default();
                    match collect_html(inner.as_bytes(), shift + start, false, &mut nested) {
                        Ok(()) => out.borrow_mut().refs.append(&mut nested.refs),
                        Err(e) => *nested_error.borrow_mut() = Some(e),
                    }
                }
                Ok(())
            }),
        ));

    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    let result = rewriter.write(html).and_then(|()| rewriter.end());
    result.map_err(|e| Error(e.to_string()))?;
    match nested_error.into_inner() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The kind of a `<link>` by its `rel` (a space-separated, ASCII case-insensitive token set),
/// or `None` when it is not checked.
fn link_kind(rel: &str) -> Option<Kind> {
    let mut kind: Option<Kind> = None;
    for token in rel.split(is_html_space).filter(|t| !t.is_empty()) {
        let k = if token.eq_ignore_ascii_case("stylesheet") {
            Kind::Stylesheet
        } else if token.eq_ignore_ascii_case("modulepreload") {
            Kind::ModulePreload
        } else if token.eq_ignore_ascii_case("preload") {
            Kind::Preload
        } else if [
            "icon",
            "apple-touch-icon",
            "apple-touch-icon-precomposed",
            "mask-icon",
        ]
        .iter()
        .any(|i| token.eq_ignore_ascii_case(i))
        {
            Kind::Icon
        } else if token.eq_ignore_ascii_case("manifest") {
            Kind::Manifest
        } else {
            continue;
        };
        // The most specific token wins ("preload stylesheet" is a stylesheet).
        kind = Some(kind.map_or(k, |old| old.min(k)));
    }
    kind
}

fn is_html_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C')
}

/// The URLs of a `srcset` (or `imagesrcset`) value, per the HTML "parse a srcset attribute"
/// algorithm: candidates are split at commas that follow a URL or end its descriptors, so a URL
/// may contain commas (`a,b.png 1x`), a URL's trailing commas end the candidate, and commas
/// inside descriptor parentheses do not split. Descriptors are not validated: a candidate with
/// a malformed descriptor is still a reference the author wrote.
pub fn srcset_urls(srcset: &str) -> Vec<&str> {
    let b = srcset.as_bytes();
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0C');
    let mut urls = Vec::new();
    let mut pos = 0;
    loop {
        while pos < b.len() && (space(b[pos]) || b[pos] == b',') {
            pos += 1;
        }
        if pos >= b.len() {
            return urls;
        }
        let start = pos;
        while pos < b.len() && !space(b[pos]) {
            pos += 1;
        }
        let mut url = &srcset[start..pos];
        if url.ends_with(',') {
            url = url.trim_end_matches(',');
        } else {
            // Descriptors: up to a comma outside parentheses.
            let mut in_parens = false;
            while pos < b.len() {
                match b[pos] {
                    b',' if !in_parens => {
                        pos += 1;
                        break;
                    }
                    b'(' => in_parens = true,
                    b')' => in_parens = false,
                    _ => {}
                }
                pos += 1;
            }
        }
        if !url.is_empty() {
            urls.push(url);
        }
    }
}

/// Decodes the character references of an attribute value: numeric ones, and the named ones a
/// URL plausibly contains (`&amp;` `&quot;` `&lt;`…, ASCII punctuation such as `&sol;`, and the
/// Latin-1 letters such as `&eacute;`). Legacy references without `;` are decoded when not
/// followed by an alphanumeric or `=`, as in attribute values. Anything else is kept as written.
fn decode_entities(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        match decode_one(after) {
            Some((c, used)) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Decodes the reference at the start of `s` (just after `&`): the character and the bytes used.
fn decode_one(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    if b.first() == Some(&b'#') {
        let (hex, digits_at) = match b.get(1) {
            Some(b'x' | b'X') => (true, 2),
            _ => (false, 1),
        };
        let digits = b[digits_at..]
            .iter()
            .take_while(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 {
            return None;
        }
        let text = &s[digits_at..digits_at + digits];
        let value = u32::from_str_radix(text, if hex { 16 } else { 10 }).unwrap_or(u32::MAX);
        let c = match value {
            0 => '\u{FFFD}',
            v => char::from_u32(v).unwrap_or('\u{FFFD}'),
        };
        let mut used = digits_at + digits;
        if b.get(used) == Some(&b';') {
            used += 1;
        }
        return Some((c, used));
    }
    let len = b.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    if len == 0 {
        return None;
    }
    let name = &s[..len];
    let c = named_entity(name)?;
    if b.get(len) == Some(&b';') {
        return Some((c, len + 1));
    }
    // Without ';' only the legacy names count, and not before '=' (`?a=1&copy=2`).
    let legacy = matches!(
        name,
        "amp" | "lt" | "gt" | "quot" | "AMP" | "LT" | "GT" | "QUOT"
    ) || LATIN1.contains(&name);
    if legacy && b.get(len) != Some(&b'=') {
        return Some((c, len));
    }
    None
}

/// The HTML 4 Latin-1 entity names, U+00A0 to U+00FF in order.
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "apos" => '\'',
        "sol" => '/',
        "bsol" => '\\',
        "colon" => ':',
        "semi" => ';',
        "comma" => ',',
        "period" => '.',
        "quest" => '?',
        "num" => '#',
        "percnt" => '%',
        "equals" => '=',
        "plus" => '+',
        "excl" => '!',
        "dollar" => '$',
        "commat" => '@',
        "lpar" => '(',
        "rpar" => ')',
        "lowbar" | "UnderBar" => '_',
        "tilde" => '~',
        "grave" => '`',
        "Tab" => '\t',
        "NewLine" => '\n',
        _ => {
            let i = LATIN1.iter().position(|n| *n == name)?;
            char::from_u32(0xA0 + i as u32)?
        }
    })
}

// ---------------------------------------------------------------------------------------------
// CSS
// ---------------------------------------------------------------------------------------------

/// The references of a stylesheet (or of a `style=""` declaration list): `url(…)` quoted or
/// not, `@import "…"` and `@import url(…)` (top level only, as in CSS), and the bare strings of
/// `image-set()` / `-webkit-image-set()`. Comments, escapes and `@namespace url(…)` (a name,
/// not a fetch) are handled by the tokenizer; `url(` with an unquoted space is a bad URL that
/// browsers ignore, and so does this.
pub fn css_references(css: &str) -> Vec<Reference> {
    let mut refs = Vec::new();
    css_into(css, 0, false, &mut refs);
    refs
}

fn css_into(css: &str, shift: usize, declarations_only: bool, out: &mut Vec<Reference>) {
    // Every reference needs a literal `(` (`url(`, `image-set(`) or `@` (`@import`); escapes
    // cannot produce either, so text without them (most style attributes) needs no tokenizing.
    if !css.as_bytes().iter().any(|&b| b == b'(' || b == b'@') {
        return;
    }
    let mut input = ParserInput::new(css);
    let mut parser = Parser::new(&mut input);
    let mut walk = CssWalk { shift, out };
    walk.block(&mut parser, !declarations_only, false);
}

struct CssWalk<'o> {
    shift: usize,
    out: &'o mut Vec<Reference>,
}

#[derive(Clone, Copy, PartialEq)]
enum Prelude {
    None,
    /// In an `@import` prelude, before its URL.
    Import,
    /// In an at-rule prelude whose URLs are not fetched (`@namespace`), or after the `@import` URL.
    Skip,
}

impl CssWalk<'_> {
    fn push(&mut self, kind: Kind, url: &str, offset: usize) {
        let url = url.trim_matches(|c: char| c.is_ascii_whitespace());
        if !url.is_empty() {
            self.out.push(Reference {
                kind,
                raw: url.to_owned(),
                offset: self.shift + offset,
            });
        }
    }

    fn nested(&mut self, p: &mut Parser<'_, '_>, image_set: bool) {
        let _ = p.parse_nested_block(|p| {
            self.block(p, false, image_set);
            Ok::<(), ParseError<'_, ()>>(())
        });
    }

    /// Walks the tokens of one block. `top`: at the top level of a stylesheet (where `@import`
    /// lives); `image_set`: directly inside `image-set()`, where strings are URLs.
    fn block(&mut self, p: &mut Parser<'_, '_>, top: bool, image_set: bool) {
        let mut prelude = Prelude::None;
        loop {
            let at = p.position().byte_index();
            let token = match p.next_including_whitespace_and_comments() {
                Ok(t) => t.clone(),
                Err(_) => return,
            };
            let kind = if prelude == Prelude::Import {
                Kind::CssImport
            } else {
                Kind::CssUrl
            };
            match token {
                Token::WhiteSpace(_) | Token::Comment(_) => {}
                Token::UnquotedUrl(url) => {
                    if prelude != Prelude::Skip {
                        self.push(kind, &url, at);
                    }
                    if prelude == Prelude::Import {
                        prelude = Prelude::Skip;
                    }
                }
                Token::Function(name) if name.eq_ignore_ascii_case("url") => {
                    // url("…"): the tokenizer only folds unquoted URLs into one token.
                    let mut url = None;
                    let _ = p.parse_nested_block(|p| {
                        if let Ok(Token::QuotedString(s)) = p.next() {
                            url = Some(s.clone());
                        }
                        Ok::<(), ParseError<'_, ()>>(())
                    });
                    if let Some(url) = url {
                        if prelude != Prelude::Skip {
                            self.push(kind, &url, at);
                        }
                    }
                    if prelude == Prelude::Import {
                        prelude = Prelude::Skip;
                    }
                }
                Token::Function(name)
                    if name.eq_ignore_ascii_case("image-set")
                        || name.eq_ignore_ascii_case("-webkit-image-set") =>
                {
                    self.nested(p, true)
                }
                Token::QuotedString(s) if prelude == Prelude::Import => {
                    self.push(Kind::CssImport, &s, at);
                    prelude = Prelude::Skip;
                }
                Token::QuotedString(s) if image_set => self.push(Kind::CssUrl, &s, at),
                Token::AtKeyword(name) if top => {
                    prelude = if name.eq_ignore_ascii_case("import") {
                        Prelude::Import
                    } else if name.eq_ignore_ascii_case("namespace") {
                        Prelude::Skip
                    } else {
                        Prelude::None
                    };
                }
                Token::Semicolon => prelude = Prelude::None,
                Token::CurlyBracketBlock => {
                    prelude = Prelude::None;
                    self.nested(p, false);
                }
                Token::Function(_) | Token::ParenthesisBlock | Token::SquareBracketBlock
                    if prelude != Prelude::Skip =>
                {
                    self.nested(p, false)
                }
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------------

/// Where the build folder is served: the site's own hosts, and the URL path of the build
/// folder (`/` unless the site lives under a path such as `/docs/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// (lowercase host without trailing dot, explicit non-default port)
    hosts: Vec<(String, Option<u16>)>,
    /// Segments of the root path: `/docs/` → ["docs"].
    root: Vec<String>,
}

impl Site {
    /// `hosts`: the names the site is served under (`www.example.com`, `example.com`,
    /// `localhost:8080`); a scheme or path around a name is ignored. Ports 80 and 443 are the
    /// default ports (a name without port matches them, and only them).
    pub fn new<I, S>(hosts: I) -> Site
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let hosts = hosts
            .into_iter()
            .filter_map(|h| {
                let h = h.as_ref().trim();
                let h = h.split_once("://").map_or(h, |(_, rest)| rest);
                let h = h.split(['/', '?', '#']).next().unwrap_or("");
                let (host, port) = host_port(h)?;
                Some((host, port))
            })
            .collect();
        Site {
            hosts,
            root: Vec::new(),
        }
    }

    /// Serves the build folder under a URL path (`/docs/`): `/docs/a.js` is the file `a.js`,
    /// and a reference outside `/docs/` is not a file of the build.
    pub fn with_root(mut self, root: &str) -> Site {
        self.root = root
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        self
    }

    fn owns(&self, authority: &str) -> bool {
        let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        match host_port(host_and_port) {
            Some((host, port)) => self.hosts.iter().any(|(h, p)| *h == host && *p == port),
            None => false,
        }
    }
}

/// Splits `host[:port]` (or `[v6]:port`), lowercasing the host and dropping a trailing dot and
/// default ports; `None` when the host is empty or the port is not a number.
fn host_port(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        (&s[..=end], s[end + 1..].strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => match p.parse::<u16>().ok()? {
            80 | 443 => None,
            p => Some(p),
        },
    };
    Some((host, port))
}

/// The file a reference names, relative to the build folder, with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A file: `assets/app.js`. The key is exactly the percent-decoded URL path, so it may
    /// contain what no folder can (`a//b.js`, or a `/` decoded from `%2F`): such a key is
    /// missing, and so is the file the browser asks for. Look it up among the scanned keys; never
    /// join it onto the file system.
    File(String),
    /// A folder, written with its trailing slash: `blog/`, or `""` for the root of the site.
    /// The server answers with its `index.html`.
    DirectoryIndex(String),
}

impl Target {
    /// The path as returned: `assets/app.js`, `blog/`, `""`.
    pub fn path(&self) -> &str {
        match self {
            Target::File(p) | Target::DirectoryIndex(p) => p,
        }
    }

    /// The build-relative keys that satisfy the reference, best first: a folder's
    /// `index.html`; for a file, the file itself and then `<file>/index.html` (the reference
    /// may name a folder without its slash, `/blog`, which S3 website hosting and most CDN
    /// rewrites serve from `blog/index.html`).
    pub fn candidates(&self) -> Vec<String> {
        match self {
            Target::File(p) => vec![p.clone(), format!("{p}/index.html")],
            Target::DirectoryIndex(p) => vec![format!("{p}index.html")],
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Seg<'a> {
    text: &'a str,
    /// Still percent-encoded (from a URL) rather than a decoded file name.
    encoded: bool,
}

const EMPTY: Seg<'static> = Seg {
    text: "",
    encoded: false,
};

impl Seg<'_> {
    fn decoded(&self) -> Cow<'_, str> {
        if self.encoded {
            percent_decode(self.text)
        } else {
            Cow::Borrowed(self.text)
        }
    }
}

enum Located<'a> {
    /// An absolute URL path on this site (segments; the last is "" for a folder).
    Path(Vec<Seg<'a>>),
    /// Another site, another scheme, or above the root.
    Elsewhere,
    /// Empty or a pure fragment: the document itself.
    Document,
}

/// Resolves a reference found in the page at `from` (its path relative to the build folder,
/// with `/`, e.g. `blog/post/index.html`) to the build-relative file it names, or `None` when it
/// is not a file of this build: another scheme (`data:`, `blob:`, `mailto:`, `javascript:`…),
/// another host (absolute or protocol-relative), empty, a pure fragment, `..` above the root of
/// the build (browsers would clamp it; a reference that relies on that is not checked), or
/// outside [`Site::with_root`].
///
/// `base_href` is [`PageRefs::base_href`]. Follows the URL standard where it matters: surrounding
/// C0/space is trimmed and tabs/newlines removed, `\` is `/`, schemes and hosts are
/// case-insensitive, `.`/`..` (also as `%2e`) are removed, query and fragment are dropped, and
/// the path is percent-decoded (UTF-8) the way S3 decodes a request path into a key.
pub fn resolve(site: &Site, from: &str, base_href: Option<&str>, raw: &str) -> Option<Target> {
    let raw_clean = clean_url(raw);
    // Most references are path-absolute (`/assets/app.js`): they need no base path.
    let relative = !raw_clean.starts_with('/') && scheme_end(&raw_clean).is_none();
    let page: Vec<Seg<'_>> = if base_href.is_none() && !relative {
        Vec::new()
    } else {
        page_path(site, from)
    };
    let base_clean = base_href.map(clean_url);
    let base = match base_clean.as_deref().map(|b| locate(site, Some(&page), b)) {
        None | Some(Located::Document) => Some(page),
        Some(Located::Path(path)) => Some(path),
        Some(Located::Elsewhere) => None,
    };
    let Located::Path(path) = locate(site, base.as_deref(), &raw_clean) else {
        return None;
    };
    // Strip the root; what remains must be inside it.
    if path.len() <= site.root.len() {
        return None;
    }
    for (seg, root) in path.iter().zip(&site.root) {
        if seg.decoded() != root.as_str() {
            return None;
        }
    }
    let inside = &path[site.root.len()..];
    let mut key = String::with_capacity(raw_clean.len() + from.len());
    for (i, seg) in inside.iter().enumerate() {
        if i > 0 {
            key.push('/');
        }
        key.push_str(&seg.decoded());
    }
    if inside.last().is_some_and(|s| s.text.is_empty()) {
        Some(Target::DirectoryIndex(key))
    } else {
        Some(Target::File(key))
    }
}

/// The URL path of the page: the root, then `from`.
fn page_path<'a>(site: &'a Site, from: &'a str) -> Vec<Seg<'a>> {
    let root = site.root.iter().map(|r| r.as_str());
    let page = from.split('/').filter(|s| !s.is_empty());
    root.chain(page)
        .map(|text| Seg {
            text,
            encoded: false,
        })
        .collect()
}

/// Trims leading and trailing C0 controls and spaces, removes tabs and newlines, turns `\` into
/// `/` (what the URL parser does for http(s) URLs).
fn clean_url(s: &str) -> Cow<'_, str> {
    let s = s.trim_matches(|c: char| c <= ' ');
    if s.contains(['\t', '\n', '\r', '\\']) {
        Cow::Owned(
            s.chars()
                .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
                .map(|c| if c == '\\' { '/' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// The end of the URL's scheme (the index of its `:`), if it has one.
fn scheme_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    for (i, &c) in b.iter().enumerate().skip(1) {
        match c {
            b':' => return Some(i),
            c if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.') => {}
            _ => return None,
        }
    }
    None
}

/// Resolves a cleaned URL against `base` (the full path of the base URL; `None` when the base
/// is elsewhere).
fn locate<'a>(site: &Site, base: Option<&[Seg<'a>]>, s: &'a str) -> Located<'a> {
    if s.is_empty() || s.starts_with('#') {
        return Located::Document;
    }
    // Query and fragment are not part of the key.
    let s = &s[..s.find(['?', '#']).unwrap_or(s.len())];
    let (mut stack, path): (Vec<Seg<'a>>, &str) = if let Some(colon) = scheme_end(s) {
        let scheme = &s[..colon];
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return Located::Elsewhere;
        }
        // `http:foo` (no slashes) is legal but odd; not treated as same-site.
        let Some(rest) = s[colon + 1..].strip_prefix("//") else {
            return Located::Elsewhere;
        };
        match authority(site, rest) {
            Some(path) => (Vec::new(), path),
            None => return Located::Elsewhere,
        }
    } else if let Some(rest) = s.strip_prefix("//") {
        match authority(site, rest) {
            Some(path) => (Vec::new(), path),
            None => return Located::Elsewhere,
        }
    } else if s.starts_with('/') {
        // Path-absolute: on the base's host.
        if base.is_none() {
            return Located::Elsewhere;
        }
        (Vec::new(), s)
    } else {
        let Some(base) = base else {
            return Located::Elsewhere;
        };
        if s.is_empty() {
            // Only a query: the base itself.
            return Located::Path(base.to_vec());
        }
        let mut dir = base.to_vec();
        dir.pop();
        (dir, s)
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    let mut segments = path.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match dots(seg) {
            2 => {
                if stack.pop().is_none() {
                    return Located::Elsewhere;
                }
                if last {
                    stack.push(EMPTY);
                }
            }
            1 => {
                if last {
                    stack.push(EMPTY);
                }
            }
            _ => stack.push(Seg {
                text: seg,
                encoded: true,
            }),
        }
    }
    Located::Path(stack)
}

/// After `//`: checks the host, returns the path (`""` when there is none).
fn authority<'a>(site: &Site, rest: &'a str) -> Option<&'a str> {
    let end = rest.find('/').unwrap_or(rest.len());
    site.owns(&rest[..end]).then(|| &rest[end..])
}

/// 1 for a `.` segment, 2 for `..` (also percent-encoded, as in the URL standard), else 0.
fn dots(seg: &str) -> u8 {
    match seg.len() {
        1 if seg == "." => 1,
        2 if seg == ".." => 2,
        3 if seg.eq_ignore_ascii_case("%2e") => 1,
        4 if seg.eq_ignore_ascii_case(".%2e") || seg.eq_ignore_ascii_case("%2e.") => 2,
        6 if seg.eq_ignore_ascii_case("%2e%2e") => 2,
        _ => 0,
    }
}

/// Percent-decodes to UTF-8 (invalid sequences become U+FFFD; no file has such a name).
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            bytes.push(hex(b[i + 1]) * 16 + hex(b[i + 2]));
            i += 3;
        } else {
            bytes.push(b[i]);
            i += 1;
        }
    }
    match String::from_utf8(bytes) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site::new(["example.com", "www.example.com"])
    }

    /// "F:path", "D:path" or "-" (None).
    fn show(t: Option<Target>) -> String {
        match t {
            Some(Target::File(p)) => format!("F:{p}"),
            Some(Target::DirectoryIndex(p)) => format!("D:{p}"),
            None => "-".to_owned(),
        }
    }

    fn check_table(site: &Site, cases: &[(&str, Option<&str>, &str, &str)]) {
        let mut failures = Vec::new();
        for &(from, base, raw, want) in cases {
            let got = show(resolve(site, from, base, raw));
            if got != want {
                failures.push(format!(
                    "from {from:?} base {base:?} raw {raw:?}: got {got:?}, want {want:?}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    #[rustfmt::skip] // a table reads better one case a line
    fn resolve_relative_and_absolute_paths() {
        check_table(&site(), &[
            ("index.html", None, "/assets/app.js", "F:assets/app.js"),
            ("index.html", None, "assets/app.js", "F:assets/app.js"),
            ("index.html", None, "./assets/app.js", "F:assets/app.js"),
            ("blog/post/index.html", None, "img/a.png", "F:blog/post/img/a.png"),
            ("blog/post/index.html", None, "./img/a.png", "F:blog/post/img/a.png"),
            ("blog/post/index.html", None, "../a.png", "F:blog/a.png"),
            ("blog/post/index.html", None, "../../a.png", "F:a.png"),
            ("blog/post/index.html", None, "./.././../a.png", "F:a.png"),
            ("blog/post/index.html", None, "/a.png", "F:a.png"),
            ("blog/post.html", None, "post.css", "F:blog/post.css"),
            ("blog/post.html", None, "../post.css", "F:post.css"),
            ("index.html", None, "/a/b/../c.js", "F:a/c.js"),
            ("index.html", None, "/a/./b/./c.js", "F:a/b/c.js"),
            ("index.html", None, "a/b/../../c.js", "F:c.js"),
            // `..` above the root of the build: browsers clamp, we do not guess.
            ("index.html", None, "../a.png", "-"),
            ("index.html", None, "/../a.png", "-"),
            ("blog/post/index.html", None, "../../../a.png", "-"),
            ("index.html", None, "/a/../../b.png", "-"),
            // Dot segments percent-encoded count as dots (URL standard).
            ("index.html", None, "/a/%2e%2E/c.js", "F:c.js"),
            ("index.html", None, "/a/.%2e/c.js", "F:c.js"),
            ("index.html", None, "/a/%2E/c.js", "F:a/c.js"),
            ("index.html", None, "/a/...js", "F:a/...js"),
            ("index.html", None, "/a/.hidden", "F:a/.hidden"),
            // Empty segments stay: S3 keys `assets//app.js` and `assets/app.js` differ.
            ("index.html", None, "/assets//app.js", "F:assets//app.js"),
        ]);
    }

    #[test]
    #[rustfmt::skip] // a table reads better one case a line
    fn resolve_query_fragment_and_non_references() {
        check_table(&site(), &[
            ("index.html", None, "/app.js?v=3", "F:app.js"),
            ("index.html", None, "/app.js#x", "F:app.js"),
            ("index.html", None, "/app.css?v=1#frag", "F:app.css"),
            ("index.html", None, "/a.js#x?y", "F:a.js"),
            ("index.html", None, "sprite.svg#icon-home", "F:sprite.svg"),
            ("index.html", None, "/a.js?x=../../etc", "F:a.js"),
            ("index.html", None, "/a.js?", "F:a.js"),
            ("blog/index.html", None, "?v=2", "F:blog/index.html"),
            ("index.html", None, "#top", "-"),
            ("index.html", None, "#", "-"),
            ("index.html", None, "", "-"),
            ("index.html", None, "   \n\t", "-"),
        ]);
    }

    #[test]
    #[rustfmt::skip] // a table reads better one case a line
    fn resolve_percent_encoding_spaces_and_non_ascii() {
        check_table(&site(), &[
            ("index.html", None, "/caf%C3%A9.png", "F:café.png"),
            ("index.html", None, "/caf%c3%a9.png", "F:café.png"),
            ("index.html", None, "/café.png", "F:café.png"),
            ("index.html", None, "/%E6%97%A5%E6%9C%AC/%E7%94%BB.png", "F:日本/画.png"),
            ("index.html", None, "/日本/画.png", "F:日本/画.png"),
            ("index.html", None, "/a%20b.png", "F:a b.png"),
            ("index.html", None, "/a b.png", "F:a b.png"),
            ("index.html", None, "a%20b/c d.png", "F:a b/c d.png"),
            ("index.html", None, "/a+b.png", "F:a+b.png"),
            ("index.html", None, "/100%25.png", "F:100%.png"),
            ("index.html", None, "/bad%zz.png", "F:bad%zz.png"),
            ("index.html", None, "/trailing%2", "F:trailing%2"),
            ("index.html", None, "/%FF.png", "F:\u{FFFD}.png"),
            // Next.js dynamic-route chunks.
            ("index.html", None, "/_next/static/chunks/app/blog/%5Bslug%5D/page-1a2b.js",
                "F:_next/static/chunks/app/blog/[slug]/page-1a2b.js"),
            // `%2F` is decoded into the key (S3 does the same), but it is not a path separator
            // for dot segments: `..%2F` is a segment named `../`, a key no build holds.
            ("index.html", None, "/x%2Fy.png", "F:x/y.png"),
            ("blog/index.html", None, "..%2Fx.png", "F:blog/../x.png"),
            ("blog/index.html", None, "%2e%2e/x.png", "F:x.png"),
        ]);
    }

    #[test]
    #[rustfmt::skip] // a table reads better one case a line
    fn resolve_hosts_and_schemes() {
        check_table(&site(), &[
            ("index.html", None, "https://example.com/a.js", "F:a.js"),
            ("index.html", None, "http://example.com/a.js", "F:a.js"),
            ("index.html", None, "HTTPS://EXAMPLE.COM/a.js", "F:a.js"),
            ("index.html", None, "https://www.example.com/a.js", "F:a.js"),
            ("index.html", None, "https://www.example.com./a.js", "F:a.js"),
            ("index.html", None, "https://example.com:443/a.js", "F:a.js"),
            ("index.html", None, "http://example.com:80/a.js", "F:a.js"),
            ("index.html", None, "https://example.com:/a.js", "F:a.js"),
            ("index.html", None, "https://user:pw@example.com/a.js", "F:a.js"),
            ("index.html", None, "https://example.com", "D:"),
            ("index.html", None, "https://example.com?x=1", "D:"),
            ("index.html", None, "https://example.com#x", "D:"),
            ("blog/index.html", None, "https://example.com/../a.js", "-"),
            ("index.html", None, "https://example.com:8443/a.js", "-"),
            ("index.html", None, "https://example.com:x/a.js", "-"),
            ("index.html", None, "https://other.com/a.js", "-"),
            ("index.html", None, "https://cdn.example.com/a.js", "-"),
            ("index.html", None, "https://example.com.evil.net/a.js", "-"),
            ("index.html", None, "https://example.com@evil.net/a.js", "-"),
            ("index.html", None, "https:///a.js", "-"),
            // Protocol-relative.
            ("index.html", None, "//example.com/a.js", "F:a.js"),
            ("index.html", None, "//WWW.Example.Com/x/y.js", "F:x/y.js"),
            ("index.html", None, "//cdn.example.com/x.js", "-"),
            ("index.html", None, "//fonts.googleapis.com/css?family=Roboto", "-"),
            // Backslashes are slashes in http(s) URLs.
            ("index.html", None, "\\\\example.com\\a.js", "F:a.js"),
            ("index.html", None, "\\\\evil.net\\a.js", "-"),
            ("blog/index.html", None, "img\\a.png", "F:blog/img/a.png"),
            // Other schemes.
            ("index.html", None, "data:image/png;base64,iVBORw0KGgo=", "-"),
            ("index.html", None, "DATA:image/svg+xml,%3Csvg%3E", "-"),
            ("index.html", None, "blob:https://example.com/0f3c-11aa", "-"),
            ("index.html", None, "mailto:hi@example.com", "-"),
            ("index.html", None, "javascript:void(0)", "-"),
            ("index.html", None, "JavaScript:alert(1)", "-"),
            ("index.html", None, " javascript:alert(1)", "-"),
            ("index.html", None, "tel:+4912345", "-"),
            ("index.html", None, "about:blank", "-"),
            ("index.html", None, "ftp://example.com/a.js", "-"),
            ("index.html", None, "file:///etc/passwd", "-"),
            ("index.html", None, "ws://example.com/a", "-"),
            ("index.html", None, "c:/windows/a.png", "-"),
            // `http:a.png` is legal but odd: not treated as same-site.
            ("index.html", None, "http:a.png", "-"),
            // Not schemes: a colon after a slash or a non-scheme character.
            ("index.html", None, "./a:b.png", "F:a:b.png"),
            ("index.html", None, "/a:b.png", "F:a:b.png"),
            ("index.html", None, "1a:b.png", "F:1a:b.png"),
        ]);
    }

    #[test]
    #[rustfmt::skip] // a table reads better one case a line
    fn resolve_whitespace() {
        check_table(&site(), &[
            ("index.html", None, "  /a.js \n", "F:a.js"),
            ("index.html", None, "\t/a.js", "F:a.js"),
            ("index.html", None, "/a\n.js", "F:a.js"),
            ("index.html", None, "/a\r\n/b\t.js", "F:a/b.js"),
            ("index.html", None, "\x0C/a.js\x00", "F:a.js"),
            ("index.html", None, " https://example.com/a.js ", "F:a.js"),
        ]);
    }

    #[test]
    #[rustfmt::skip] // a table reads better one case a line
    fn resolve_folders() {
        check_table(&site(), &[
            ("index.html", None, "/", "D:"),
            ("index.html", None, "/blog/", "D:blog/"),
            ("index.html", None, "/blog", "F:blog"),
            ("index.html", None, "/blog/?page=2", "D:blog/"),
            ("index.html", None, "/blog/#top", "D:blog/"),
            ("index.html", None, "/blog/.", "D:blog/"),
            ("index.html", None, "/blog/..", "D:"),
            ("index.html", None, "/blog/../", "D:"),
            ("index.html", None, ".", "D:"),
            ("index.html", None, "./", "D:"),
            ("blog/index.html", None, "./", "D:blog/"),
            ("blog/index.html", None, ".", "D:blog/"),
            ("blog/post/index.html", None, "..", "D:blog/"),
            ("blog/post/index.html", None, "../", "D:blog/"),
            ("blog/post/index.html", None, "../../", "D:"),
            ("blog/post/index.html", None, "../other/", "D:blog/other/"),
            ("index.html", None, "https://www.example.com/docs/", "D:docs/"),
        ]);
        assert_eq!(Target::DirectoryIndex("blog/".into()).candidates(), ["blog/index.html"]);
        assert_eq!(Target::DirectoryIndex("".into()).candidates(), ["index.html"]);
        assert_eq!(Target::File("blog".into()).candidates(), ["blog", "blog/index.html"]);
        assert_eq!(Target::File("a/b.js".into()).path(), "a/b.js");
    }

    #[test]
    #[rustfmt::skip] // a table reads better one case a line
    fn resolve_with_base_href() {
        check_table(&site(), &[
            ("index.html", Some("/docs/"), "a.png", "F:docs/a.png"),
            ("index.html", Some("/docs/"), "../a.png", "F:a.png"),
            ("index.html", Some("/docs/"), "/a.png", "F:a.png"),
            ("index.html", Some("/docs/"), "?x", "D:docs/"),
            ("index.html", Some("/docs"), "a.png", "F:a.png"),
            ("index.html", Some("/static/page.html"), "a.png", "F:static/a.png"),
            ("index.html", Some("/static/page.html"), "?v=1", "F:static/page.html"),
            ("blog/post/index.html", Some("../"), "a.png", "F:blog/a.png"),
            ("blog/post/index.html", Some("./"), "a.png", "F:blog/post/a.png"),
            ("blog/post/index.html", Some(""), "a.png", "F:blog/post/a.png"),
            ("blog/post/index.html", Some("#x"), "a.png", "F:blog/post/a.png"),
            ("blog/index.html", Some("  /v2/?q#f "), "a.png", "F:v2/a.png"),
            ("index.html", Some("https://example.com/v2/"), "a.png", "F:v2/a.png"),
            ("index.html", Some("//www.example.com/v2/"), "a.png", "F:v2/a.png"),
            // A base on another host moves every relative reference there.
            ("index.html", Some("https://cdn.other.net/"), "a.png", "-"),
            ("index.html", Some("https://cdn.other.net/"), "/a.png", "-"),
            ("index.html", Some("https://cdn.other.net/"), "?x", "-"),
            ("index.html", Some("https://cdn.other.net/"), "https://example.com/a.png", "F:a.png"),
            ("index.html", Some("https://cdn.other.net/"), "#top", "-"),
            ("index.html", Some("javascript:void(0)"), "a.png", "-"),
            ("index.html", Some("../../"), "a.png", "-"),
        ]);
    }

    #[test]
    #[rustfmt::skip] // a table reads better one case a line
    fn resolve_under_a_root_path_and_ports() {
        let docs = Site::new(["example.com"]).with_root("/docs/");
        check_table(&docs, &[
            ("index.html", None, "/docs/a.js", "F:a.js"),
            ("index.html", None, "a.js", "F:a.js"),
            ("guide/index.html", None, "../a.js", "F:a.js"),
            ("index.html", None, "/docs/", "D:"),
            ("index.html", None, "https://example.com/docs/img/", "D:img/"),
            ("index.html", None, "/a.js", "-"),
            ("index.html", None, "../a.js", "-"),
            ("index.html", None, "/docs", "-"),
            ("index.html", None, "/documents/a.js", "-"),
            ("index.html", None, "/docs%2Fa.js", "-"),
        ]);
        assert_eq!(Site::new(["example.com"]).with_root("docs"), docs);
        assert_eq!(Site::new(["example.com"]).with_root("/docs"), docs);
        assert_eq!(Site::new(["example.com"]).with_root("/"), Site::new(["example.com"]));

        let local = Site::new(["localhost:8080", "[::1]:8080", "https://Static.Example.ORG/path"]);
        check_table(&local, &[
            ("index.html", None, "http://localhost:8080/a.js", "F:a.js"),
            ("index.html", None, "http://localhost/a.js", "-"),
            ("index.html", None, "http://localhost:9090/a.js", "-"),
            ("index.html", None, "http://[::1]:8080/a.js", "F:a.js"),
            ("index.html", None, "http://[::1]/a.js", "-"),
            ("index.html", None, "https://static.example.org/a.js", "F:a.js"),
        ]);
        let nobody = Site::new(Vec::<String>::new());
        check_table(&nobody, &[
            ("index.html", None, "https://example.com/a.js", "-"),
            ("index.html", None, "/a.js", "F:a.js"),
        ]);
    }

    #[rustfmt::skip]
    const JUNK: [&str; 30] = [
        "/", "//", "\\", ".", "..", "%2e", "%2E%2e", "%", "%2F", "%C3", "%A9", "?", "#", ":", "@",
        "[", "]", "a", "é", "日", " ", "\t", "\n", "http", "https:", "example.com", "data:",
        "x.js", ":80", "&amp;",
    ];

    /// Pseudo-random inputs from URL-ish pieces: no panic, and no target escapes the build
    /// through a real `..` segment.
    #[test]
    fn resolve_never_panics_on_junk() {
        let pieces = JUNK;
        let s = site();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut raw = String::new();
            for _ in 0..(seed % 9) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                raw.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            let base = if seed & 1 == 0 {
                None
            } else {
                Some(raw.as_str())
            };
            if let Some(t) = resolve(&s, "a/b/index.html", base, &raw) {
                let segments: Vec<&str> = t.path().split('/').collect();
                // Dot segments are removed; a decoded `%2F` can only put them inside a
                // segment name (`..%2Fx` is the one key `../x`), never as a path step.
                if !raw.to_ascii_lowercase().contains("%2f") {
                    assert!(
                        !segments.iter().any(|s| *s == "." || *s == ".."),
                        "{raw:?} -> {t:?}"
                    );
                }
            }
            let _ = srcset_urls(&raw);
            let _ = css_references(&raw);
            let _ = html_references(raw.as_bytes()).unwrap();
        }
    }

    // --- srcset -------------------------------------------------------------------------------

    #[test]
    #[rustfmt::skip] // a table reads better one case a line
    fn srcset_parsing() {
        let cases: &[(&str, &[&str])] = &[
            ("a.png", &["a.png"]),
            ("a.png 1x, b.png 2x", &["a.png", "b.png"]),
            ("a.png 480w,b.png 800w", &["a.png", "b.png"]),
            ("a.png 480w , b.png 800w", &["a.png", "b.png"]),
            // A comma not followed by whitespace belongs to the URL…
            ("a,b.png 1x, c.png 2x", &["a,b.png", "c.png"]),
            ("a.png,b.png", &["a.png,b.png"]),
            // …a URL's trailing commas end the candidate.
            ("a.png, b.png", &["a.png", "b.png"]),
            ("a.png,, b.png", &["a.png", "b.png"]),
            (" , a.png 1x ,  ,b.png 2x , ", &["a.png", "b.png"]),
            ("a.png\n 1x,\n\tb.png 2x", &["a.png", "b.png"]),
            // Commas inside descriptor parentheses do not split.
            ("a.png (x, y) 1x, b.png", &["a.png", "b.png"]),
            ("data:image/png;base64,iVBOR 1x, /b.png 2x", &["data:image/png;base64,iVBOR", "/b.png"]),
            (
                "/_next/image?url=%2Fa.jpg&w=828&q=75 1x, /_next/image?url=%2Fa.jpg&w=1920&q=75 2x",
                &["/_next/image?url=%2Fa.jpg&w=828&q=75", "/_next/image?url=%2Fa.jpg&w=1920&q=75"],
            ),
            ("a.png 1x 2x junk, b.png", &["a.png", "b.png"]),
            ("", &[]),
            (" , ,", &[]),
        ];
        for (srcset, want) in cases {
            assert_eq!(srcset_urls(srcset), *want, "srcset {srcset:?}");
        }
    }

    // --- CSS ----------------------------------------------------------------------------------

    fn css(text: &str) -> Vec<(Kind, String)> {
        css_references(text)
            .into_iter()
            .map(|r| (r.kind, r.raw))
            .collect()
    }

    fn urls(list: &[&str]) -> Vec<(Kind, String)> {
        list.iter().map(|u| (Kind::CssUrl, u.to_string())).collect()
    }

    #[test]
    fn css_urls_quoted_unquoted_and_escaped() {
        assert_eq!(css("body{background:url(a.png)}"), urls(&["a.png"]));
        assert_eq!(css("a{b:url('x.png')}"), urls(&["x.png"]));
        assert_eq!(css(r#"a{b:url("a b.png")}"#), urls(&["a b.png"]));
        assert_eq!(css(r#"a{b:url( "a b.png" )}"#), urls(&["a b.png"]));
        assert_eq!(css("a{b:url(  spaced.png  )}"), urls(&["spaced.png"]));
        assert_eq!(css("a{b:URL(upper.png)}"), urls(&["upper.png"]));
        assert_eq!(css(r#"a{b:Url("mixed.png")}"#), urls(&["mixed.png"]));
        assert_eq!(css(r#"a{b:url("a\"b.png")}"#), urls(&["a\"b.png"]));
        assert_eq!(css(r"a{b:url(a\)b.png)}"), urls(&["a)b.png"]));
        assert_eq!(css(r#"a{b:url("caf\e9 .png")}"#), urls(&["café.png"]));
        assert_eq!(css(r"a{b:url(\61 .png)}"), urls(&["a.png"]));
        assert_eq!(css("a{b:url(a.png),url(b.png)}"), urls(&["a.png", "b.png"]));
        assert_eq!(css("a{mask:url(#clip)}"), urls(&["#clip"]));
        assert_eq!(
            css("a{b:url(data:image/svg+xml;charset=utf8,%3Csvg%3E)}"),
            urls(&["data:image/svg+xml;charset=utf8,%3Csvg%3E"])
        );
        // Empty, bad (unquoted space) and unclosed.
        assert_eq!(css("a{b:url()} c{d:url('')} e{f:url(  )}"), urls(&[]));
        assert_eq!(css("a{b:url(a b.png)} c{d:url(ok.png)}"), urls(&["ok.png"]));
        assert_eq!(css(r#"a{background:url("x.png""#), urls(&["x.png"]));
        assert_eq!(css("a{background:url(x.png"), urls(&["x.png"]));
        // A string is not a URL, nor is a look-alike function.
        assert_eq!(css(r#"a::after{content:"url(no.png)"}"#), urls(&[]));
        assert_eq!(css(r#"a{b:src("no.png"); c:attr(data-x url)}"#), urls(&[]));
        assert_eq!(css("a{b:my-url(no.png)}"), urls(&[]));
    }

    #[test]
    fn css_comments_and_nesting() {
        assert_eq!(
            css("/* url(no.png) */ a{b:url(yes.png)}"),
            urls(&["yes.png"])
        );
        assert_eq!(
            css("a{b:/* url(no.png) */url(yes.png)}"),
            urls(&["yes.png"])
        );
        assert_eq!(css("a{b:url(yes.png)/*}*/}"), urls(&["yes.png"]));
        assert_eq!(css("<!-- a{b:url(c.png)} -->"), urls(&["c.png"]));
        assert_eq!(
            css("@media (min-width:600px){.a{background:url(m.png)} @supports (x:y){.b{c:url(n.png)}}}"),
            urls(&["m.png", "n.png"])
        );
        assert_eq!(css(".a{.b &{c:url(nested.png)}}"), urls(&["nested.png"]));
        assert_eq!(
            css("a[data-x=\"url(no.png)\"]{b:url(yes.png)}"),
            urls(&["yes.png"])
        );
        assert_eq!(css("color:red;font:12px/1.5 sans-serif"), urls(&[]));
    }

    #[test]
    fn css_image_set() {
        assert_eq!(
            css(r#"a{background-image:image-set("a.png" 1x, "b.png" 2x)}"#),
            urls(&["a.png", "b.png"])
        );
        assert_eq!(
            css("a{background-image:-webkit-image-set(url(a.png) 1x, url('b.png') 2x)}"),
            urls(&["a.png", "b.png"])
        );
        assert_eq!(
            css(r#"a{b:image-set("a.avif" type("image/avif"), "a.jpg" type("image/jpeg"))}"#),
            urls(&["a.avif", "a.jpg"])
        );
        assert_eq!(css(r#"a{b:Image-Set('c.png' 1x)}"#), urls(&["c.png"]));
        assert_eq!(
            css(r#"a{b:image-set(linear-gradient(red, blue) 1x, "d.png" 2x)}"#),
            urls(&["d.png"])
        );
    }

    #[test]
    fn css_font_face_src_lists() {
        let text = r#"
            @font-face {
              font-family: "Inter";
              src: local("Inter"), local(Inter-Regular),
                   url("/fonts/inter.woff2?v=4") format("woff2"),
                   url(/fonts/inter.woff) format("woff"),
                   url('/fonts/inter.ttf') format('truetype');
              font-display: swap;
            }"#;
        assert_eq!(
            css(text),
            urls(&[
                "/fonts/inter.woff2?v=4",
                "/fonts/inter.woff",
                "/fonts/inter.ttf"
            ])
        );
    }

    #[test]
    fn css_import() {
        let import = |u: &str| (Kind::CssImport, u.to_string());
        assert_eq!(css(r#"@import "a.css";"#), vec![import("a.css")]);
        assert_eq!(css("@import 'a.css' screen;"), vec![import("a.css")]);
        assert_eq!(
            css("@import url(b.css) screen and (min-width: 600px);"),
            vec![import("b.css")]
        );
        assert_eq!(
            css(r#"@import url("c.css") layer(base) supports(display: grid);"#),
            vec![import("c.css")]
        );
        assert_eq!(css(r#"@IMPORT "d.css";"#), vec![import("d.css")]);
        assert_eq!(css(r#"@import/* c */"e.css";"#), vec![import("e.css")]);
        assert_eq!(
            css(
                r#"@charset "utf-8"; @import "a.css"; @import url(b.css); .x{background:url(c.png)}"#
            ),
            vec![
                import("a.css"),
                import("b.css"),
                (Kind::CssUrl, "c.png".into())
            ]
        );
        // Only the first URL of the prelude is the import.
        assert_eq!(
            css(r#"@import "a.css" supports(background: url(no.png));"#),
            vec![import("a.css")]
        );
        // @import is top-level only; @namespace URLs are names, not fetches.
        assert_eq!(css(r#"@media print { @import "x.css"; }"#), vec![]);
        assert_eq!(
            css("@namespace svg url(http://www.w3.org/2000/svg); a{b:url(y.png)}"),
            urls(&["y.png"])
        );
        assert_eq!(
            css(r#"@namespace url("x"); @import "after.css";"#),
            vec![import("after.css")]
        );
    }

    #[test]
    fn css_offsets() {
        let text = "a{}\n.b{background:url(x.png)}\n@import 'i.css';";
        let refs = css_references(text);
        assert_eq!(refs.len(), 2);
        assert_eq!(&text[refs[0].offset..refs[0].offset + 4], "url(");
        assert_eq!(line_number(text.as_bytes(), refs[0].offset), 2);
        assert_eq!(&text[refs[1].offset..refs[1].offset + 7], "'i.css'");
        assert_eq!(line_number(text.as_bytes(), refs[1].offset), 3);
    }

    // --- HTML ---------------------------------------------------------------------------------

    fn html(text: &str) -> Vec<(Kind, String)> {
        html_references(text.as_bytes())
            .unwrap()
            .refs
            .into_iter()
            .map(|r| (r.kind, r.raw))
            .collect()
    }

    fn refs(list: &[(Kind, &str)]) -> Vec<(Kind, String)> {
        list.iter().map(|(k, u)| (*k, u.to_string())).collect()
    }

    const VITE_INDEX: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <link rel="icon" type="image/svg+xml" href="/vite.svg" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <title>Vite + React + TS</title>
    <script type="module" crossorigin src="/assets/index-BX7a9_kq.js"></script>
    <link rel="modulepreload" crossorigin href="/assets/react-vendor-DlTT7PrE.js">
    <link rel="modulepreload" crossorigin href="/assets/router-C3uXbK0c.js">
    <link rel="stylesheet" crossorigin href="/assets/index-Cq2Lm9Xz.css">
  </head>
  <body>
    <div id="root"></div>
  </body>
</html>
"#;

    #[test]
    fn html_vite_index() {
        use Kind::*;
        assert_eq!(
            html(VITE_INDEX),
            refs(&[
                (Icon, "/vite.svg"),
                (Script, "/assets/index-BX7a9_kq.js"),
                (ModulePreload, "/assets/react-vendor-DlTT7PrE.js"),
                (ModulePreload, "/assets/router-C3uXbK0c.js"),
                (Stylesheet, "/assets/index-Cq2Lm9Xz.css"),
            ])
        );
        // base: './' builds write relative URLs; they resolve the same from index.html.
        let relative = VITE_INDEX.replace("\"/", "\"./");
        let page = html_references(relative.as_bytes()).unwrap();
        let keys: Vec<String> = page
            .refs
            .iter()
            .filter_map(|r| resolve(&site(), "index.html", page.base_href.as_deref(), &r.raw))
            .map(|t| t.path().to_owned())
            .collect();
        assert_eq!(
            keys,
            [
                "vite.svg",
                "assets/index-BX7a9_kq.js",
                "assets/react-vendor-DlTT7PrE.js",
                "assets/router-C3uXbK0c.js",
                "assets/index-Cq2Lm9Xz.css"
            ]
        );
    }

    /// A page of `next build` with `output: "export"` (app router), abridged.
    const NEXT_EXPORT: &str = concat!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charSet="utf-8"/>"#,
        r#"<meta name="viewport" content="width=device-width, initial-scale=1"/>"#,
        r#"<link rel="preload" href="/_next/static/media/e4af272ccee01ff0-s.p.woff2" as="font" crossorigin="" type="font/woff2"/>"#,
        r#"<link rel="stylesheet" href="/_next/static/css/7e0b6c3a2d1f4e5b.css" data-precedence="next"/>"#,
        r#"<link rel="preload" as="script" fetchPriority="low" href="/_next/static/chunks/webpack-4a8ca7c99e9bb3d8.js"/>"#,
        r#"<script src="/_next/static/chunks/fd9d1056-2821b0f0cabcd8bd.js" async=""></script>"#,
        r#"<script src="/_next/static/chunks/app/blog/%5Bslug%5D/page-9c8d7e6f5a4b3c2d.js" async=""></script>"#,
        r#"<title>Hello, world</title><meta name="description" content="A post"/>"#,
        r#"<meta property="og:image" content="https://example.com/og/hello.png"/>"#,
        r#"<link rel="icon" href="/favicon.ico" type="image/x-icon" sizes="16x16"/>"#,
        r#"<script src="/_next/static/chunks/polyfills-42372ed130431b0a.js" noModule=""></script></head>"#,
        r#"<body class="__className_d65c78"><nav><a href="/">Home</a><a href="/blog/">Blog</a></nav>"#,
        r#"<main><h1>Hello</h1><img alt="Hero" fetchPriority="high" width="800" height="400" decoding="async" data-nimg="1" "#,
        r#"style="color:transparent;background-size:cover;background-position:50% 50%;background-repeat:no-repeat;background-image:url(&quot;data:image/svg+xml;charset=utf-8,%3Csvg xmlns=&#x27;http://www.w3.org/2000/svg&#x27;%3E%3C/svg%3E&quot;)" "#,
        r#"srcSet="/_next/image?url=%2Fimages%2Fhero.jpg&amp;w=828&amp;q=75 1x, /_next/image?url=%2Fimages%2Fhero.jpg&amp;w=1920&amp;q=75 2x" "#,
        r#"src="/_next/image?url=%2Fimages%2Fhero.jpg&amp;w=1920&amp;q=75"/>"#,
        r#"<div style="background-image:url(&quot;/images/texture.png&quot;)"></div></main>"#,
        r#"<script src="/_next/static/chunks/webpack-4a8ca7c99e9bb3d8.js" async=""></script>"#,
        r#"<script>(self.__next_f=self.__next_f||[]).push([0]);self.__next_f.push([2,null])</script>"#,
        r#"<script>self.__next_f.push([1,"1:HL[\"/_next/static/css/7e0b6c3a2d1f4e5b.css\",\"style\"]\n"])</script>"#,
        r#"</body></html>"#,
    );

    #[test]
    fn html_next_export_page() {
        use Kind::*;
        let page = html_references(NEXT_EXPORT.as_bytes()).unwrap();
        let got: Vec<(Kind, String)> = page.refs.iter().map(|r| (r.kind, r.raw.clone())).collect();
        assert_eq!(
            got,
            refs(&[
                (Preload, "/_next/static/media/e4af272ccee01ff0-s.p.woff2"),
                (Stylesheet, "/_next/static/css/7e0b6c3a2d1f4e5b.css"),
                (Preload, "/_next/static/chunks/webpack-4a8ca7c99e9bb3d8.js"),
                (Script, "/_next/static/chunks/fd9d1056-2821b0f0cabcd8bd.js"),
                (Script, "/_next/static/chunks/app/blog/%5Bslug%5D/page-9c8d7e6f5a4b3c2d.js"),
                (Icon, "/favicon.ico"),
                (Script, "/_next/static/chunks/polyfills-42372ed130431b0a.js"),
                (Image, "/_next/image?url=%2Fimages%2Fhero.jpg&w=1920&q=75"),
                (Image, "/_next/image?url=%2Fimages%2Fhero.jpg&w=828&q=75"),
                (Image, "/_next/image?url=%2Fimages%2Fhero.jpg&w=1920&q=75"),
                (CssUrl, "data:image/svg+xml;charset=utf-8,%3Csvg xmlns='http://www.w3.org/2000/svg'%3E%3C/svg%3E"),
                (CssUrl, "/images/texture.png"),
                (Script, "/_next/static/chunks/webpack-4a8ca7c99e9bb3d8.js"),
            ])
        );
        // Resolved from the page's own path, deduplicated, as the deploy would check them.
        let mut keys: Vec<String> = page
            .refs
            .iter()
            .filter_map(|r| resolve(&site(), "blog/hello/index.html", None, &r.raw))
            .map(|t| t.path().to_owned())
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(
            keys,
            [
                "_next/image",
                "_next/static/chunks/app/blog/[slug]/page-9c8d7e6f5a4b3c2d.js",
                "_next/static/chunks/fd9d1056-2821b0f0cabcd8bd.js",
                "_next/static/chunks/polyfills-42372ed130431b0a.js",
                "_next/static/chunks/webpack-4a8ca7c99e9bb3d8.js",
                "_next/static/css/7e0b6c3a2d1f4e5b.css",
                "_next/static/media/e4af272ccee01ff0-s.p.woff2",
                "favicon.ico",
                "images/texture.png",
            ]
        );
    }

    #[test]
    fn html_inline_styles() {
        let text = r#"<html><head><style>
            @import "/css/base.css";
            body { background: url('/img/bg.png') }
            /* url(/img/commented.png) */
            @font-face { font-family: X; src: url(/fonts/x.woff2) format("woff2") }
            </style></head>
            <body style="background-image: url(&quot;/img/body.png&quot;)">
            <div style='background:url("/img/a&amp;b.png")'></div>
            <div style="color: red"></div>
            <div style=background:url(/img/unquoted.png)></div>
            <svg><style>.s{fill:url(/img/pattern.svg#p)}</style></svg>
            </body></html>"#;
        use Kind::*;
        assert_eq!(
            html(text),
            refs(&[
                (CssImport, "/css/base.css"),
                (CssUrl, "/img/bg.png"),
                (CssUrl, "/fonts/x.woff2"),
                (CssUrl, "/img/body.png"),
                (CssUrl, "/img/a&b.png"),
                (CssUrl, "/img/unquoted.png"),
                (CssUrl, "/img/pattern.svg#p"),
            ])
        );
        // `@import` in a style attribute is not a thing.
        assert_eq!(
            html(r#"<p style="@import 'x.css'; color: red">"#),
            refs(&[])
        );
    }

    #[test]
    fn html_large_style_and_noscript_arrive_in_chunks() {
        let filler = ".x{color:red}\n".repeat(20_000);
        let text = format!(
            "<style>{filler}.a{{background:url(/first.png)}}{filler}.b{{background:url(/last.png)}}</style>\
             <noscript>{filler}<img src=/n1.png>{filler}<img src=/n2.png></noscript><img src=/after.png>"
        );
        let page = html_references(text.as_bytes()).unwrap();
        let got: Vec<&str> = page.refs.iter().map(|r| r.raw.as_str()).collect();
        assert_eq!(
            got,
            [
                "/first.png",
                "/last.png",
                "/n1.png",
                "/n2.png",
                "/after.png"
            ]
        );
        for r in &page.refs {
            let at = &text[r.offset..];
            assert!(
                at.starts_with("url(") || at.starts_with("<img"),
                "offset of {r:?}: {:?}",
                &at[..10]
            );
        }
    }

    #[test]
    fn html_odd_case_and_unquoted_attributes() {
        use Kind::*;
        let text = "<IMG SRC=/a.png SrcSet='/b.png 2x'><LINK REL=StyleSheet HREF=/s.css>\
                    <Script SRC=/x.js></SCRIPT><link rel=ICON href=/i.png>\
                    <VIDEO Poster=/p.jpg SRC=/v.mp4></VIDEO>";
        assert_eq!(
            html(text),
            refs(&[
                (Image, "/a.png"),
                (Image, "/b.png"),
                (Stylesheet, "/s.css"),
                (Script, "/x.js"),
                (Icon, "/i.png"),
                (Media, "/v.mp4"),
                (Image, "/p.jpg"),
            ])
        );
    }

    #[test]
    #[rustfmt::skip] // a table reads better one case a line
    fn html_link_rel_tokens() {
        use Kind::*;
        let cases: &[(&str, Option<Kind>)] = &[
            ("stylesheet", Some(Stylesheet)),
            ("  StyleSheet  ", Some(Stylesheet)),
            ("alternate stylesheet", Some(Stylesheet)),
            ("preload stylesheet", Some(Stylesheet)),
            ("preload", Some(Preload)),
            ("modulepreload", Some(ModulePreload)),
            ("icon", Some(Icon)),
            ("shortcut icon", Some(Icon)),
            ("SHORTCUT\tICON", Some(Icon)),
            ("apple-touch-icon", Some(Icon)),
            ("apple-touch-icon-precomposed", Some(Icon)),
            ("mask-icon", Some(Icon)),
            ("manifest", Some(Manifest)),
            ("canonical", None),
            ("alternate", None),
            ("prefetch", None),
            ("dns-prefetch", None),
            ("preconnect", None),
            ("next", None),
            ("stylesheets", None),
            ("", None),
        ];
        for (rel, want) in cases {
            let got = html(&format!(r#"<link rel="{rel}" href="/x">"#));
            let want: Vec<(Kind, String)> = want.iter().map(|k| (*k, "/x".to_string())).collect();
            assert_eq!(got, want, "rel={rel:?}");
        }
        assert_eq!(html(r#"<link href="/no-rel.css">"#), refs(&[]));
        assert_eq!(
            html(r#"<link rel="preload" as="image" imagesrcset="/a.png 1x, /b.png 2x" imagesizes="50vw">"#),
            refs(&[(Preload, "/a.png"), (Preload, "/b.png")])
        );
        assert_eq!(html(r#"<link rel="preload" as="image" href="/h.png" imagesrcset="/a.png 1x">"#), refs(&[(Preload, "/h.png"), (Preload, "/a.png")]));
    }

    #[test]
    fn html_media_frames_objects_and_svg() {
        use Kind::*;
        let text = r##"
            <picture>
              <source type="image/avif" srcset="/img/a.avif 1x, /img/a@2x.avif 2x">
              <source srcset="/img/a.webp" media="(min-width: 600px)">
              <img src="/img/a.jpg" srcset="/img/a-480.jpg 480w, /img/a-800.jpg 800w" sizes="(max-width: 600px) 480px, 800px" alt="">
            </picture>
            <video controls poster="/media/poster.jpg">
              <source src="/media/clip.webm" type="video/webm">
              <source src="/media/clip.mp4" type="video/mp4">
              <track kind="captions" src="/media/clip.en.vtt" srclang="en">
            </video>
            <audio src="/media/sound.mp3"></audio>
            <iframe src="/embed/widget.html" title="w"></iframe>
            <object data="/docs/manual.pdf" type="application/pdf"></object>
            <embed src="/media/anim.swf">
            <input type="image" src="/img/submit.png" alt="Go"><input type="text" src="/no.png">
            <svg><use href="/icons.svg#home"></use><use xlink:href="/old-icons.svg#x"></use><use href="#local"></use>
              <image href="/img/in-svg.png" width="10" height="10"/></svg>
            <a href="/not-checked/"><img src="/img/in-link.png"></a>
            <form action="/submit"><button formaction="/x">Go</button></form>
            <area href="/map-target">
            <img data-src="/lazy.png" src="">
        "##;
        assert_eq!(
            html(text),
            refs(&[
                (Image, "/img/a.avif"),
                (Image, "/img/a@2x.avif"),
                (Image, "/img/a.webp"),
                (Image, "/img/a.jpg"),
                (Image, "/img/a-480.jpg"),
                (Image, "/img/a-800.jpg"),
                (Image, "/media/poster.jpg"),
                (Media, "/media/clip.webm"),
                (Media, "/media/clip.mp4"),
                (Media, "/media/clip.en.vtt"),
                (Media, "/media/sound.mp3"),
                (Frame, "/embed/widget.html"),
                (Object, "/docs/manual.pdf"),
                (Object, "/media/anim.swf"),
                (Image, "/img/submit.png"),
                (Image, "/icons.svg#home"),
                (Image, "/old-icons.svg#x"),
                (Image, "#local"),
                (Image, "/img/in-svg.png"),
                (Image, "/img/in-link.png"),
            ])
        );
    }

    #[test]
    fn html_base_href() {
        let page = html_references(br#"<head><base target="_blank"><base href=" /docs/ "><base href="/second/"></head><img src="a.png">"#).unwrap();
        assert_eq!(page.base_href.as_deref(), Some("/docs/"));
        assert_eq!(
            resolve(
                &site(),
                "index.html",
                page.base_href.as_deref(),
                &page.refs[0].raw
            ),
            Some(Target::File("docs/a.png".into()))
        );
        assert_eq!(html_references(b"<img src=a.png>").unwrap().base_href, None);
        let page =
            html_references(br#"<base href="https://example.com/v2/?a=1&amp;b=2">"#).unwrap();
        assert_eq!(
            page.base_href.as_deref(),
            Some("https://example.com/v2/?a=1&b=2")
        );
        // A <base> inside <noscript> is not the page's base.
        let page =
            html_references(br#"<noscript><base href="/ns/"></noscript><base href="/real/">"#)
                .unwrap();
        assert_eq!(page.base_href.as_deref(), Some("/real/"));
    }

    #[test]
    fn html_noscript_template_comments_and_raw_text() {
        use Kind::*;
        let text = r#"<head>
            <noscript><link rel="stylesheet" href="/no-js.css"></noscript>
            <link rel="preload" href="/late.css" as="style" onload="this.rel='stylesheet'">
            </head><body>
            <noscript><img src="/pixel.gif?id=1" height="1" width="1" style="display:none;background:url(/ns-bg.png)"></noscript>
            <template><img src="/tpl.png"></template>
            <my-card><template shadowrootmode="open"><link rel="stylesheet" href="/card.css"><slot></slot></template></my-card>
            <!-- <img src="/commented.png"> -->
            <!--[if lt IE 9]><script src="/html5shiv.js"></script><![endif]-->
            <script>document.write('<img src="/written.png">')</script>
            <script type="text/template"><img src="/in-script-template.png"></script>
            <textarea><img src="/in-textarea.png"></textarea>
            <title><img src="/in-title.png"></title>
            <xmp><img src="/in-xmp.png"></xmp>
            <iframe><img src="/in-iframe-fallback.png"></iframe>
            <img src="/last.png">
            </body>"#;
        assert_eq!(
            html(text),
            refs(&[
                (Stylesheet, "/no-js.css"),
                (Preload, "/late.css"),
                (Image, "/pixel.gif?id=1"),
                (CssUrl, "/ns-bg.png"),
                (Image, "/tpl.png"),
                (Stylesheet, "/card.css"),
                (Image, "/last.png"),
            ])
        );
    }

    #[test]
    #[rustfmt::skip] // a table reads better one case a line
    fn html_entities_and_whitespace_in_attributes() {
        let cases: &[(&str, &[&str])] = &[
            (r#"<img src="/a.png?x=1&amp;y=2">"#, &["/a.png?x=1&y=2"]),
            (r#"<img src="/caf&eacute;.png">"#, &["/café.png"]),
            (r#"<img src="/caf&#233;.png">"#, &["/café.png"]),
            (r#"<img src="/caf&#xE9;.png">"#, &["/café.png"]),
            (r#"<img src="&#47;a.png">"#, &["/a.png"]),
            (r#"<img src="&sol;a&period;png">"#, &["/a.png"]),
            (r#"<img src="/a&b.png">"#, &["/a&b.png"]),
            (r#"<img src="/a.png?a=1&copy=2">"#, &["/a.png?a=1&copy=2"]),
            (r#"<img src="/a.png?a=1&copy2">"#, &["/a.png?a=1&copy2"]),
            (r#"<img src="/&copy-x.png">"#, &["/©-x.png"]),
            (r#"<img src="/a&unknown;b.png">"#, &["/a&unknown;b.png"]),
            (r#"<img src="/a&#;.png">"#, &["/a&#;.png"]),
            (r#"<img src="/a&#0;.png">"#, &["/a\u{FFFD}.png"]),
            (r#"<img src="/a&#x110000;.png">"#, &["/a\u{FFFD}.png"]),
            (r#"<img src="  /spaced.png  ">"#, &["/spaced.png"]),
            ("<img src=\"\n\t/nl.png\n\">", &["/nl.png"]),
            (r#"<img src="">"#, &[]),
            (r#"<img src="   ">"#, &[]),
            (r#"<img src>"#, &[]),
            (r#"<img srcset="/a.png 1x,&#32;/b.png 2x">"#, &["/a.png", "/b.png"]),
            (r#"<img src='/single "quoted".png'>"#, &["/single \"quoted\".png"]),
        ];
        for (text, want) in cases {
            let got: Vec<String> = html(text).into_iter().map(|(_, raw)| raw).collect();
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn html_encodings_and_broken_markup() {
        // A windows-1252 page: the browser requests the UTF-8 path of "café.png".
        let mut latin1 = b"<meta charset=\"windows-1252\"><img src=\"caf".to_vec();
        latin1.extend_from_slice(b"\xE9.png\">");
        assert_eq!(html_references(&latin1).unwrap().refs[0].raw, "café.png");
        // Invalid UTF-8 in a UTF-8 page does not stop the parse.
        let broken = b"<p>\xFF\xFE</p><img src=\"/ok.png\">";
        assert_eq!(html_references(broken).unwrap().refs[0].raw, "/ok.png");
        // Markup a streaming parser finds ambiguous, unclosed tags, stray end tags.
        for text in [
            "<select><xmp><script src=/x.js></script></select><img src=/y.png>",
            "<table><tr><td><img src=/t.png></table></div></span><img src=/y.png",
            "<svg><p><style><img src=/z.png></style></svg><img src=/y.png>",
            "<img src=/y.png",
            "<img src=\"/y.png",
            "",
            "<!doctype html>",
        ] {
            assert!(html_references(text.as_bytes()).is_ok(), "{text}");
        }
        assert_eq!(
            html("<img src=/a.png><img src=/a.png>").len(),
            2,
            "duplicates are kept"
        );
    }

    #[test]
    fn html_offsets_and_lines() {
        let text = "<!doctype html>\n<head>\n<link rel=stylesheet href=/s.css>\n</head>\n<style>\n\n a{b:url(/u.png)}</style><noscript>\n<img src=/n.png></noscript>";
        let page = html_references(text.as_bytes()).unwrap();
        let at: Vec<(usize, &str)> = page
            .refs
            .iter()
            .map(|r| {
                (
                    line_number(text.as_bytes(), r.offset),
                    &text[r.offset..r.offset + 4],
                )
            })
            .collect();
        assert_eq!(at, [(3, "<lin"), (7, "url("), (8, "<img")]);
    }

    /// How the deploy uses it: every page's same-site references must exist.
    #[test]
    fn end_to_end_missing_references() {
        let files = [
            "index.html",
            "blog/index.html",
            "assets/app.js",
            "assets/app.css",
            "img/logo.png",
            "fonts/inter.woff2",
        ];
        let pages = [
            (
                "index.html",
                r#"<link rel=stylesheet href="/assets/app.css"><script type=module src="./assets/app.js"></script>
                   <img src="img/logo.png"><img src="/img/missing.png"><a href="/nowhere/">x</a>
                   <iframe src="/blog"></iframe><link rel=icon href="https://example.com/favicon.ico">
                   <script src="https://cdn.jsdelivr.net/npm/x.js"></script>"#,
            ),
            (
                "blog/index.html",
                r#"<base href="/"><img src="img/logo.png" srcset="img/logo@2x.png 2x"><iframe src="./"></iframe>"#,
            ),
        ];
        let css = (
            "assets/app.css",
            "@font-face{src:url(../fonts/inter.woff2)}body{background:url(../img/bg.png)}",
        );
        let site = site();
        let exists = |t: &Target| t.candidates().iter().any(|c| files.contains(&c.as_str()));
        let mut missing = Vec::new();
        for (from, text) in pages {
            let page = html_references(text.as_bytes()).unwrap();
            for r in &page.refs {
                if let Some(t) = resolve(&site, from, page.base_href.as_deref(), &r.raw) {
                    if !exists(&t) {
                        missing.push(format!("{from}: {} {}", r.kind, r.raw));
                    }
                }
            }
        }
        for r in css_references(css.1) {
            if let Some(t) = resolve(&site, css.0, None, &r.raw) {
                if !exists(&t) {
                    missing.push(format!("{}: {} {}", css.0, r.kind, r.raw));
                }
            }
        }
        assert_eq!(
            missing,
            [
                "index.html: image /img/missing.png",
                "index.html: icon https://example.com/favicon.ico",
                "blog/index.html: image img/logo@2x.png",
                "assets/app.css: css url ../img/bg.png",
            ]
        );
    }
}
