//! Whether a build-output file name carries a content hash, i.e. whether the file can be served
//! with `Cache-Control: public, max-age=31536000, immutable` and retired, not deleted, when it
//! leaves the build.
//!
//! The two errors are not equally bad. A false positive (a mutable file judged hashed) keeps a
//! stale file in browsers for a year and no invalidation can fix it; a false negative only costs
//! a revalidation request. Every rule below therefore errs towards "not hashed" when unsure.
//! Measured on `fixtures/hash-corpus/` (real bundler output and real look-alike names): see the
//! test at the bottom of this file.

/// `rel` is the path relative to the build folder, with `/` separators
/// (`assets/index-BX7a9_kq.js`, `_next/static/chunks/main-1a2b3c4d5e6f7a8b.js`).
pub fn is_content_hashed(rel: &str) -> bool {
    let rel = rel.trim_start_matches("./").trim_start_matches('/');
    let (dirs, name) = match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    };
    // A source map, a precompressed copy or webpack's extracted licence file is named after its
    // file and changes exactly when it does, so it shares the file's verdict.
    let name = strip_sidecar_suffix(name);
    // HTML is the entry point that names the hashed files; it must always be revalidated.
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".html") || lower.ends_with(".htm") {
        return false;
    }
    if let Some(verdict) = framework_folder_verdict(dirs) {
        return verdict;
    }
    name_has_hash_token(name)
}

/// `x.js.map` -> `x.js`, `x.css.gz` -> `x.css`, `main.1a2b3c4d.js.LICENSE.txt` -> `main.1a2b3c4d.js`.
fn strip_sidecar_suffix(name: &str) -> &str {
    let mut name = name;
    loop {
        let before = name;
        for suffix in [".map", ".gz", ".br", ".LICENSE.txt"] {
            if let Some(s) = name.strip_suffix(suffix) {
                // Keep a bare `.map` etc. as it is: only strip a suffix that follows a real name.
                if s.contains('.') {
                    name = s;
                }
            }
        }
        if name == before {
            return name;
        }
    }
}

/// Folders that frameworks reserve for content-addressed output. The components may sit under a
/// base path (`docs/_app/immutable/...`), so they are looked for anywhere in the path.
/// `Some(true)`: immutable by the framework's contract. `Some(false)`: a known mutable file inside
/// such a folder. `None`: no opinion, judge the file name.
fn framework_folder_verdict(dirs: &str) -> Option<bool> {
    let parts: Vec<&str> = dirs.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let next = parts.get(i + 1).copied();
        match *part {
            // SvelteKit: everything under `_app/immutable/` is hashed; `_app/version.json` and
            // `_app/env.js` are not, and they are not under `immutable/`.
            "_app" if next == Some("immutable") => return Some(true),
            // Next.js: `_next/static/` holds hashed chunks, CSS and media, plus the build-id folder
            // (`_next/static/<buildId>/_buildManifest.js`) whose name changes on every build.
            // Turbopack's chunk names (`0cz1d0mv5g_q7.js`) are hashes no name rule could tell
            // from words, so the folder is the signal.
            "_next" if next == Some("static") => return Some(true),
            // Astro: `_astro/` only receives hashed assets (`Layout.bFqxy5jN.css`,
            // `hero.B718lvJY_l7TcD.webp`).
            "_astro" => return Some(true),
            // Nuxt: `_nuxt/` is hashed except the app manifest under `_nuxt/builds/`
            // (`latest.json` changes on every deploy, `meta/<buildId>.json`).
            "_nuxt" => return Some(next != Some("builds")),
            // Gatsby: `static/<32 hex>/<variant>/<name>` for processed images; the folder is the
            // hash of the source file, the file keeps its original (arbitrary) name.
            "static" if next.is_some_and(|n| n.len() == 32 && is_lower_hex(n)) => {
                return Some(true);
            }
            _ => {}
        }
    }
    None
}

/// Suffixes bundlers put between the hash and the extension.
const INNER_SUFFIXES: [&str; 6] = [
    ".chunk",  // create-react-app: `787.1a2b3c4d.chunk.js`
    "_bg",     // wasm-bindgen / Trunk: `index-1a2b3c4d5e6f7a8b_bg.wasm`
    ".entry",  // Stencil: `p-1a2b3c4d.entry.js`
    ".system", // Stencil: `p-1a2b3c4d.system.entry.js`
    ".min",    // `vendor.1a2b3c4d.min.js`
    ".bundle", // `app.1a2b3c4d.bundle.js`
];

/// Does the file name end, right before its extension (and before `.chunk`, `_bg`, … that some
/// bundlers add), with a token that has the shape of a bundler's content hash and is set off from
/// the rest of the name by `-`, `.` or `_`? A whole stem of hex also counts (webpack asset modules
/// `[hash][ext]`: `4b03e8560e2d3d1d5051.woff2`).
fn name_has_hash_token(name: &str) -> bool {
    // No extension at all (`LICENSE`, `CNAME`, `_redirects`): bundlers always keep one.
    let Some(dot) = name.rfind('.') else {
        return false;
    };
    let mut stem = &name[..dot];
    let mut webpack_chunk = false;
    loop {
        let before = stem;
        for s in INNER_SUFFIXES {
            if let Some(rest) = stem.strip_suffix(s) {
                webpack_chunk |= s == ".chunk";
                stem = rest;
            }
        }
        if stem == before {
            break;
        }
    }
    hex_token_at_end(stem, webpack_chunk)
        || base64url_token_at_end(stem)
        || capitals_token_at_end(stem)
}

fn is_sep(c: u8) -> bool {
    matches!(c, b'-' | b'.' | b'_')
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// The token of length `len` at the end of `stem`, if it is a separate segment: either the whole
/// stem or preceded by a separator.
fn tail(stem: &str, len: usize) -> Option<&str> {
    let b = stem.as_bytes();
    if b.len() < len || !stem.is_char_boundary(b.len() - len) {
        return None;
    }
    let start = b.len() - len;
    if start == 0 || is_sep(b[start - 1]) {
        Some(&stem[start..])
    } else {
        None
    }
}

/// webpack `[contenthash]` (20 hex, or `:8`, `:16`…), Parcel (8), Gatsby (20), CRA media (8/20/32),
/// Trunk (16), Next.js webpack builds (16). The run of lowercase hex must fill the whole last
/// segment.
fn hex_token_at_end(stem: &str, webpack_chunk: bool) -> bool {
    let b = stem.as_bytes();
    let run = b
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        .count();
    if !(8..=64).contains(&run) {
        return false;
    }
    let Some(tok) = tail(stem, run) else {
        return false;
    };
    let digits = tok.bytes().filter(|c| c.is_ascii_digit()).count();
    if digits == run {
        // All digits: dates, counters and ids (`IMG_20240101`, `product-12345678.jpg`,
        // `page-data/sq/d/2744905544.json`), yet 2.3% of 8-hex hashes look like this. Accept
        // them only in the exact shape bundlers write, `name.12345678.ext` (webpack, Parcel,
        // create-react-app `[name].[hash:8]`; people write ids and dates after `-` or `_`), and
        // never a date (`report.20240101.pdf`) or a zero-padded counter (`scan.00001234.pdf`).
        let dotted = stem.as_bytes().get(stem.len().wrapping_sub(run + 1)) == Some(&b'.');
        return (webpack_chunk || dotted)
            && run == 8
            && !tok.starts_with('0')
            && !looks_like_date(tok);
    }
    if digits == 0 {
        // All letters a-f: words (`deadbeef`, `facade`), not a hash in practice.
        return false;
    }
    // A hex word next to a number (`cafe2024`, `facade01`, `2024decade`) is a name; the letters
    // of a hash next to its digits (`dbfdb528`) do not read as a word.
    let letters_at_start = tok.bytes().take_while(|c| c.is_ascii_lowercase()).count();
    let letters_at_end = tok
        .bytes()
        .rev()
        .take_while(|c| c.is_ascii_lowercase())
        .count();
    // Hex words (`cafe`, `facade`, `decade`, `beef`) alternate consonants and vowels: never three
    // of `b c d f` or of `a e` in a row (`dbfdb`, `fbbae` are hash letters).
    let hex_word = |w: &str| {
        let b = w.as_bytes();
        w.len() >= 4
            && !b.windows(3).any(|t| {
                t.iter().all(|c| matches!(c, b'a' | b'e'))
                    || t.iter().all(|c| !matches!(c, b'a' | b'e'))
            })
    };
    let word_and_number = (letters_at_start + digits == run && hex_word(&tok[..letters_at_start]))
        || (letters_at_end + digits == run && hex_word(&tok[run - letters_at_end..]));
    !word_and_number
}

/// `YYYYMMDD` or `DDMMYYYY` with a plausible year (1900-2099), month and day.
fn looks_like_date(tok: &str) -> bool {
    let n = |r: std::ops::Range<usize>| tok[r].parse::<u32>().unwrap_or(0);
    let ymd = (1900..2100).contains(&n(0..4))
        && (1..=12).contains(&n(4..6))
        && (1..=31).contains(&n(6..8));
    let dmy = (1..=31).contains(&n(0..2))
        && (1..=12).contains(&n(2..4))
        && (1900..2100).contains(&n(4..8));
    ymd || dmy
}

/// The last 8 characters of `stem` when a name and a separator precede them and every one of
/// them is `allowed`. A bare 8-character stem (`isAutoPx.js`, `settings.json`) is most often an
/// identifier; the bundlers that emit bare hashes (SvelteKit, Nuxt) do so in their own folders,
/// judged apart.
fn token8_after_name(stem: &str, allowed: impl Fn(u8) -> bool) -> Option<&str> {
    if stem.len() <= 8 {
        return None;
    }
    tail(stem, 8).filter(|tok| tok.bytes().all(allowed))
}

/// Rollup / Rolldown / Vite (and so SvelteKit, Astro, Nuxt, Angular's lazy chunks): `[hash]` is 8
/// characters of base64url (`A-Z a-z 0-9 - _`). A quarter of them contain no digit
/// (`uFvAIVOc`, `DnsOEOkS`, `CSzjuvn-`), so the test is "does not read like words", not "has a
/// digit".
fn base64url_token_at_end(stem: &str) -> bool {
    let Some(tok) = token8_after_name(stem, |c| {
        c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
    }) else {
        return false;
    };
    // Lowercase-only tails are mostly words and versions (`settings`, `arrow_up`, `v1alpha1`);
    // 1.5% of Rollup hashes look like this and are missed. All-capital tails have their own
    // rule below.
    let upper = tok.bytes().any(|c| c.is_ascii_uppercase());
    let lower = tok.bytes().any(|c| c.is_ascii_lowercase());
    upper && lower && !mixed_case_reads_like_words(tok)
}

/// esbuild `[hash]` (also Angular's `main-`, `styles-`, `media/` names) is 8 characters of
/// base32, `A-Z` and `2-7`; a fifth of them have no digit (`TILCOIAR`). An all-capital Rollup
/// hash (`D8SRUWEK`, 1% of them) has the same shape, so both are judged here.
fn capitals_token_at_end(stem: &str) -> bool {
    let Some(tok) = token8_after_name(stem, |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || is_sep(c)
    }) else {
        return false;
    };
    if !tok.bytes().any(|c| c.is_ascii_uppercase()) {
        return false;
    }
    if tok.bytes().any(is_sep) {
        // Capital codes with separators (`UHC-HW-H`, `GB1-UCS2`, `IMG_1234`): a name when every
        // part reads as a word or code; Rollup hashes rarely come out like this (`CHDQL-O0`).
        let code = |p: &str| p.len() <= 4 || capitals_read_like_words(p);
        return !tok
            .split(|c: char| is_sep(c as u8))
            .filter(|p| !p.is_empty())
            .all(code);
    }
    // esbuild and Angular name their own files `chunk-[hash]`, `main-[hash]`, `polyfills-[hash]`,
    // `styles-[hash]`, `worker-[hash]`: with one of these names an all-capital base32 tail is the
    // hash even when it happens to be pronounceable (`chunk-TILCOIAR.js`).
    let name = &stem[..stem.len() - 9];
    let base32 = tok
        .bytes()
        .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c));
    if base32
        && stem.as_bytes()[stem.len() - 9] == b'-'
        && ["chunk", "main", "polyfills", "styles", "worker"].contains(&name)
    {
        return true;
    }
    !capitals_read_like_words(tok)
}

fn is_vowel(c: u8) -> bool {
    matches!(
        c.to_ascii_lowercase(),
        b'a' | b'e' | b'i' | b'o' | b'u' | b'y'
    )
}

fn vowels(s: &str) -> usize {
    s.bytes().filter(|&c| is_vowel(c)).count()
}

/// Split a token the way words are written in file names: at `-`/`_`, at letter/digit
/// boundaries, before an uppercase letter that follows a lowercase one (`SemiBold` -> `Semi`,
/// `Bold`), and before the last capital of an acronym that starts a word (`PDFViewer` -> `PDF`,
/// `Viewer`).
fn pieces(tok: &str) -> Vec<&str> {
    let b = tok.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=b.len() {
        let cut = i == b.len() || {
            let (p, c) = (b[i - 1], b[i]);
            let n = b.get(i + 1).copied();
            is_sep(p)
                || is_sep(c)
                || p.is_ascii_digit() != c.is_ascii_digit()
                || (p.is_ascii_lowercase() && c.is_ascii_uppercase())
                || (p.is_ascii_uppercase()
                    && c.is_ascii_uppercase()
                    && n.is_some_and(|n| n.is_ascii_lowercase()))
        };
        if cut {
            let piece = &tok[start..i];
            if !piece.bytes().all(is_sep) {
                out.push(piece);
            }
            start = i;
        }
    }
    out
}

fn is_digits(p: &str) -> bool {
    p.bytes().all(|c| c.is_ascii_digit())
}

/// True when a mixed-case token can be read as a few words, numbers and at most one acronym
/// (`SemiBold`, `Document`, `300Light`, `Guide-v3`, `Arrow-Up`, `PDFView`, `BtnClose`,
/// `iPhone12`), false when it has a mark of a random string: more than three pieces in eight
/// characters, a lone letter, a second acronym, an acronym beside a two-letter word, or a word
/// whose letters English does not have.
fn mixed_case_reads_like_words(tok: &str) -> bool {
    // People separate words with `__` and `--` (`Google__G__logo`, `btn--Red`); two separators in
    // a row occur in under 1% of random base64url tokens.
    if tok
        .as_bytes()
        .windows(2)
        .any(|w| is_sep(w[0]) && is_sep(w[1]))
    {
        return true;
    }
    let ps = pieces(tok);
    if ps.len() > 3 {
        return false;
    }
    let capitalised_word = |p: &str| {
        let b = p.as_bytes();
        b.len() >= 2 && b[0].is_ascii_uppercase() && b[1..].iter().all(|c| c.is_ascii_lowercase())
    };
    let mut acronyms = 0;
    let mut short_words = 0;
    let mut words = Vec::new();
    for (i, &p) in ps.iter().enumerate() {
        let pb = p.as_bytes();
        if is_digits(p) {
            continue;
        }
        if pb.len() == 1 {
            // The lone letters of names: a version before a number (`v3`), a size or unit after
            // one (`2x`, `4k`, `1080p`, `3d`), a lowercase prefix before a capitalised word
            // (`iPhone`, `eBook`).
            let c = pb[0];
            let next_digits = ps.get(i + 1).is_some_and(|n| is_digits(n));
            let prev_digits = i > 0 && is_digits(ps[i - 1]);
            let prefix =
                i == 0 && c.is_ascii_lowercase() && ps.get(1).is_some_and(|n| capitalised_word(n));
            let marker = (c == b'v' && next_digits)
                || (matches!(c, b'x' | b'k' | b'p' | b'd') && prev_digits);
            if !(marker || prefix) {
                return false;
            }
            continue;
        }
        if pb.iter().all(|c| c.is_ascii_uppercase()) || vowels(p) == 0 {
            // One acronym or vowel-less abbreviation of up to four letters (`PDF`, `HTML`, `UI`,
            // `Btn`, `Svg`); random strings often have two such groups (`Cl`+`Kh`, `Dr`+`Bdh`),
            // or a longer one.
            acronyms += 1;
            if acronyms > 1 || pb.len() > 4 {
                return false;
            }
            continue;
        }
        if !has_word_clusters(p) {
            return false;
        }
        if pb.len() == 2 {
            short_words += 1;
        }
        words.push(p);
    }
    // An acronym beside a two-letter "word" (`De`+`TSSJ`, `Cad`+`Uy`+`XHI`) is a random string:
    // names pair acronyms with real words (`PDFView`, `UIKitApp`).
    if acronyms > 0 && short_words > 0 {
        return false;
    }
    // Each word (not across the case change that joins two words: `BookCase` is fine) must read
    // like English.
    words.iter().all(|w| is_pronounceable(w))
}

/// True when an all-capital token reads as a word or as an acronym with a number (`FACEBOOK`,
/// `SETTINGS`, `EPSG3857`, `ICON24PX`, `H264`), false when it has a mark of a random string:
/// digits between letters (`LIST7MNY`), or a word of five letters or more without a vowel, with
/// a cluster or letter pairs English does not have.
fn capitals_read_like_words(tok: &str) -> bool {
    let ps = pieces(tok);
    let letter_groups: Vec<&str> = ps.iter().copied().filter(|p| !is_digits(p)).collect();
    match ps.as_slice() {
        // A word, or a word and a number.
        [_] | [_, _] => {}
        // A word, a number and a unit (`ICON24PX`, `LOGO2X`, `VIDEO4K`).
        [w, n, u]
            if !is_digits(w)
                && is_digits(n)
                && ["X", "K", "P", "D", "PX", "PT", "KB", "MB", "GB", "HD"].contains(u) => {}
        // Letters, digits, letters (`LIST7MNY`), or more pieces: random.
        _ => return false,
    }
    letter_groups.iter().enumerate().all(|(i, w)| {
        // An acronym next to a number (`EPSG3857`, `H264`), or the unit (`PX` of `ICON24PX`).
        if ps.len() > 1 && (w.len() <= 4 || i > 0) {
            return true;
        }
        // A capital word: a vowel, consonant clusters English has, and letter pairs that occur
        // in English (`STRENGTH`, `FACEBOOK`). Vowel-rich esbuild hashes pass as words
        // (`TILCOIAR`) and are missed.
        vowels(w) >= 1 && has_word_clusters(w) && is_pronounceable(w)
    })
}

/// English words do not start with a doubled consonant other than `ll` (`Ddis`; `Llama` is fine),
/// or with four consonants other than `sch…` (`MNSSP`), and have no run of six consonants
/// (`CCHSSM`).
fn has_word_clusters(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    let b = w.as_bytes();
    if b.len() >= 2 && b[0] == b[1] && !is_vowel(b[0]) && b[0] != b'l' {
        return false;
    }
    let initial = b.iter().take_while(|&&c| !is_vowel(c)).count();
    if initial >= 4 && !w.starts_with("sch") {
        return false;
    }
    let mut run = 0;
    for &c in b {
        run = if is_vowel(c) { 0 } else { run + 1 };
        if run >= 6 {
            return false;
        }
    }
    true
}

/// Do the letters read like an English word? Not if they contain a letter pair that occurs in no
/// English word (`qx`, `vq`, `jz`), a near-impossible pair at the start or end, or two rare pairs.
/// One rare pair is allowed anywhere: compound words have one at their joint (`kc` in
/// `bookcase`, `mw` in `firmware`).
fn is_pronounceable(letters: &str) -> bool {
    let b = letters.as_bytes();
    let mut rare = 0;
    for (i, w) in b.windows(2).enumerate() {
        let (x, y) = (w[0].to_ascii_lowercase(), w[1].to_ascii_lowercase());
        if !(x.is_ascii_lowercase() && y.is_ascii_lowercase()) {
            continue;
        }
        let odds = BIGRAM_LOG_ODDS[(x - b'a') as usize][(y - b'a') as usize];
        // A word may hold a near-impossible pair only where two words are joined, inside it
        // (`xg` in `foxglove`, `zk` in `buzzkill`), not at its start or end (`Qokkum`, `Xeynzaxn`).
        // Capitalised three-letter abbreviations are exempt (`Img`, `Avg`).
        let abbreviation = b.len() <= 3 && b[0].is_ascii_uppercase();
        let edge = (i == 0 || i + 2 == b.len()) && !abbreviation;
        if odds == NEVER || (edge && odds <= NEAR_NEVER) {
            return false;
        }
        if odds <= RARE {
            rare += 1;
        }
    }
    rare < 2
}

/// See `is_pronounceable`: a pair in no word, in next to no word (2^8 times rarer than among
/// random letters), and a rare pair (2^6 times rarer).
const NEVER: i8 = -9;
const NEAR_NEVER: i8 = -8;
const RARE: i8 = -6;

/// log2(frequency of the letter pair in English words / frequency among random letters),
/// rounded and clamped to -8..=9; -9 means "in no word at all". Computed from the 73,445 words of
/// Debian's `wamerican` word list (`/usr/share/dict/words`, letters only, lowercased), one count
/// per occurrence. Row: first letter, column: second letter.
#[rustfmt::skip]
const BIGRAM_LOG_ODDS: [[i8; 26]; 26] = [
    [-4,  1,  2,  1, -2, -1,  1, -2,  1, -4,  0,  3,  1,  3, -4,  1, -4,  3,  2,  3,  0,  0, -1, -2,  0, -2], // a
    [ 1, -1, -4, -4,  1, -6, -8, -5,  1, -4, -8,  1, -4, -5,  1, -6, -8,  0, -1, -3,  0, -6, -6, -8, -2, -9], // b
    [ 2, -7, -1, -6,  2, -8, -7,  2,  1, -9,  1,  0, -6, -6,  2, -7, -4,  1, -1,  1,  1, -8, -9, -9, -1, -6], // c
    [ 1, -3, -4, -1,  3, -4, -1, -3,  2, -4, -7,  0, -3, -3,  1, -4, -7,  0,  0, -4,  0, -3, -3, -9, -2, -6], // d
    [ 2, -1,  1,  3,  1,  0,  0, -2,  0, -3, -2,  2,  1,  3, -1,  1, -2,  4,  4,  2, -1,  0, -1,  0, -1, -3], // e
    [ 0, -6, -6, -7,  0,  0, -7, -6,  1, -8, -8,  0, -7, -6,  0, -7, -9,  0, -2, -1,  0, -9, -8, -9, -2, -9], // f
    [ 1, -5, -8, -6,  1, -5,  0,  0,  1, -8, -7,  0, -3, -1,  0, -5, -8,  1,  0, -4,  0, -8, -5, -9, -2, -6], // g
    [ 2, -3, -5, -5,  2, -4, -7, -5,  1, -7, -6, -2, -2, -3,  1, -5, -8, -1, -1,  0,  0, -8, -3, -9, -1, -8], // h
    [ 2,  0,  2,  1,  2,  0,  1, -4, -4, -5, -2,  2,  1,  4,  2,  0, -3,  1,  3,  2, -2,  1, -5, -3, -6,  1], // i
    [-1, -9, -9, -9, -2, -8, -9, -9, -3, -9, -8, -9, -9, -9, -1, -8, -9, -8, -8, -9, -1, -8, -8, -9, -9, -9], // j
    [-1, -4, -6, -5,  1, -5, -6, -3,  1, -7, -4, -1, -4, -2, -2, -4, -9, -3,  0, -5, -3, -9, -4, -9, -2, -9], // k
    [ 2, -2, -2,  0,  3, -2, -3, -4,  3, -7, -2,  2, -2, -3,  2, -2, -7, -4,  1,  0,  1, -2, -4, -6,  2, -7], // l
    [ 2,  0, -3, -6,  2, -4, -8, -6,  2, -9, -8, -3,  0, -3,  1,  1, -7, -5,  0, -6,  0, -6, -6, -9, -2, -8], // m
    [ 2, -2,  2,  2,  3, -1,  4, -2,  2, -3,  0, -2, -3,  0,  1, -3, -3, -2,  2,  3, -1, -1, -3, -5, -2, -4], // n
    [ 0,  0,  1,  0, -1, -1,  0, -3,  0, -5, -1,  2,  1,  3,  1,  1, -4,  3,  1,  1,  2,  0,  1, -2, -2, -3], // o
    [ 1, -4, -5, -5,  2, -5, -6,  0,  1, -8, -5,  1, -4, -5,  1,  0, -9,  2,  0,  0,  0, -8, -5, -8, -2, -8], // p
    [-7, -8, -9, -9, -9, -9, -9, -9, -7, -9, -9, -8, -9, -9, -8, -9, -9, -9, -8, -8,  1, -9, -8, -9, -9, -9], // q
    [ 3, -1,  0,  1,  3, -2,  0, -2,  3, -4, -1, -1,  0,  0,  2, -1, -5,  0,  2,  1,  1, -1, -3, -7,  0, -6], // r
    [ 1, -3,  1, -4,  2, -3, -4,  2,  2, -6, -1,  0,  0, -1,  1,  1, -2, -4,  2,  3,  1, -5, -1, -9, -1, -7], // s
    [ 2, -3, -1, -5,  3, -3, -4,  2,  3, -7, -6,  0, -2, -3,  2, -3, -9,  2,  2,  1,  1, -6, -2, -8,  0, -3], // t
    [ 0,  0,  0,  0,  0, -2,  0, -5,  0, -5, -3,  1,  1,  2, -2,  0, -7,  2,  2,  1, -6, -4, -7, -4, -5, -3], // u
    [ 0, -8, -8, -7,  2, -8, -8, -8,  1, -8, -9, -6, -9, -8, -1, -8, -9, -6, -5, -7, -3, -6, -9, -9, -5, -9], // v
    [ 1, -4, -6, -3,  0, -5, -6, -1,  0, -9, -4, -2, -5, -1,  0, -5, -9, -2, -1, -5, -6, -8, -6, -9, -5, -7], // w
    [-3, -8, -3, -9, -2, -8, -8, -4, -1, -9, -9, -7, -8, -8, -4, -2, -8, -8, -8, -2, -4, -6, -7, -5, -5, -8], // x
    [-1, -3, -2, -3, -1, -5, -4, -4, -1, -7, -6, -2, -2, -2, -2, -2, -8, -2, -1, -3, -4, -7, -3, -6, -8, -5], // y
    [-1, -7, -8, -8,  1, -9, -8, -5, -1, -9, -8, -3, -6, -7, -3, -7, -8, -8, -8, -7, -5, -7, -7, -9, -4, -2], // z
];

#[cfg(test)]
mod tests {
    use super::is_content_hashed;

    fn corpus(file: &str) -> Vec<String> {
        let path = format!("{}/fixtures/hash-corpus/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect()
    }

    #[test]
    fn corpus_figures() {
        let hashed = corpus("hashed.txt");
        let unhashed = corpus("unhashed.txt");
        let misses: Vec<&String> = hashed.iter().filter(|n| !is_content_hashed(n)).collect();
        let false_pos: Vec<&String> = unhashed.iter().filter(|n| is_content_hashed(n)).collect();
        for m in &misses {
            println!("missed (judged mutable): {m}");
        }
        for f in &false_pos {
            println!("FALSE POSITIVE (judged hashed): {f}");
        }
        let detected = hashed.len() - misses.len();
        println!(
            "hashed detected: {detected}/{} ({:.2}%); false positives: {}/{}",
            hashed.len(),
            100.0 * detected as f64 / hashed.len() as f64,
            false_pos.len(),
            unhashed.len()
        );
        assert!(false_pos.is_empty(), "{} false positives", false_pos.len());
        assert!(
            detected * 100 >= hashed.len() * 99,
            "only {detected}/{} detected",
            hashed.len()
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in [
            "",
            "/",
            ".",
            ".map",
            "a/.map",
            "é.js",
            "x-é1234567.js",
            "日本語-ABCDEFGH.js",
            "-.js",
            "a-b.c.d.e.map.gz",
        ] {
            let _ = is_content_hashed(s);
        }
    }

    #[test]
    fn examples() {
        for yes in [
            "assets/index-DnsOEOkS.js",
            "assets/about-uFvAIVOc.js",
            "assets/m30-CSzjuvn-.js",
            "assets/index-BX7a9_kq.js.map",
            "index.DnsOEOkS.js",
            "app.3f2a9c1b.js",
            "chunk-XHDWAUK3.js",
            "static/js/787.1a2b3c4d.chunk.js",
            "index-9eb0724334955a2a_bg.wasm",
            "_app/immutable/chunks/AoKm5aY1.js",
            "_next/static/chunks/0cz1d0mv5g_q7.js",
        ] {
            assert!(is_content_hashed(yes), "{yes}");
        }
        for no in [
            "index.html",
            "assets/Inter-SemiBold.woff2",
            "my-Document.pdf",
            "Roboto-Regular.ttf",
            "OpenSans-VariableFont_wdth,wght.ttf",
            "Inter_300Light.ttf",
            "IMG_20240101.jpg",
            "favicon-32x32.png",
            "_nuxt/builds/latest.json",
            "_app/version.json",
            "jquery-3.7.1.min.js",
            "1f468-200d-1f469.svg",
            "CRS.EPSG3857.js",
            "cmaps/Adobe-GB1-UCS2.bcmap",
            "Installation-Guide-v3.pdf",
            "img/Google__G__logo.svg",
            "src/css/isAutoPx.js",
            "logo-FACEBOOK.png",
            "openapi-v1alpha1.json",
            "photo-cafe2024.jpg",
            "product-12345678.jpg",
            "icon-BtnClose.png",
            "img/HtmlPage-SvgLogo.svg",
            "img/photo-Llama145.jpg",
            "img/icon-Bookcase.png",
            "img/icon-FIRMWARE.png",
            "img/icon-STRENGTH.png",
            "pdfjs-dist/cmaps/KSCms-UHC-HW-H.bcmap",
            "img/chart-TeamImg2.png",
            "img/chart-LeastFwd.png",
            "report.20240101.pdf",
            "scan.00001234.pdf",
        ] {
            assert!(!is_content_hashed(no), "{no}");
        }
    }
}
