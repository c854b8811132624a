//! Adversarial user data: the shapes of issue 21 (one notification that used to cost
//! quadratic time or memory), as fixtures for the `adversarial` bench and test, and a global
//! allocator that counts what each thread holds at its peak.
//!
//! Each fixture is two call notifications of one call (JSON Lines, one Bayeux reply array
//! per line, as `replay` reads them): the first attaches the user data, the second changes
//! it, so replaying it works out one user-data diff over the whole shape.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;

/// How deep the user data of a shape "nested to the limit" goes (the library's
/// `MAX_USER_DATA_DEPTH`; the `userData` object is level 1).
pub const DEPTH_LIMIT: usize = 64;

/// One shape of user data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Ordinary calls: many ~1 KB notifications of 100 calls, a few pairs each.
    Ordinary,
    /// One key many times (an IVR attaching the same key in a loop), then the same list with
    /// every other value changed.
    Duplicates,
    /// Many distinct keys, then the same keys in another order.
    Permuted,
    /// Many members each an object chain nested to the limit, then half of the innermost
    /// values changed.
    DeepObjects,
    /// The same with lists.
    DeepLists,
    /// A few long strings full of escapes, then one character changed in half of them.
    Escapes,
    /// User data nested far over the limit: refused.
    OverLimit,
}

impl Shape {
    /// Every shape, ordinary first.
    pub const ALL: [Shape; 7] = [
        Shape::Ordinary,
        Shape::Duplicates,
        Shape::Permuted,
        Shape::DeepObjects,
        Shape::DeepLists,
        Shape::Escapes,
        Shape::OverLimit,
    ];

    /// A short name, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Shape::Ordinary => "ordinary calls",
            Shape::Duplicates => "duplicates of one key, half changed",
            Shape::Permuted => "distinct keys, permuted",
            Shape::DeepObjects => "objects nested to the limit",
            Shape::DeepLists => "lists nested to the limit",
            Shape::Escapes => "long strings with escapes",
            Shape::OverLimit => "nested over the limit (refused)",
        }
    }
}

/// One call notification line carrying `user_data` (a JSON object text).
pub fn notification(call: &str, state: &str, user_data: &str) -> String {
    format!(
        r#"[{{"channel":"/v2/me/calls","data":{{"messageType":"CallStateChangeMessage","notificationType":"AttachedDataChanged","call":{{"id":"{call}","state":"{state}","callType":"Inbound","userData":{user_data},"duration":"1"}}}}}}]"#
    )
}

/// A chain of `depth` containers (objects `{"k":…}` or lists `[…]`) around `inner`.
pub fn nested(depth: usize, objects: bool, inner: &str) -> String {
    let mut s = String::with_capacity(depth * 6 + inner.len());
    for _ in 0..depth {
        s.push_str(if objects { r#"{"k":"# } else { "[" });
    }
    s.push_str(inner);
    for _ in 0..depth {
        s.push(if objects { '}' } else { ']' });
    }
    s
}

/// The user data of `shape`, about `bytes` long: the first version, or the changed second.
pub fn user_data(shape: Shape, bytes: usize, second: bool) -> String {
    let mut s = String::with_capacity(bytes + 64);
    s.push('{');
    let mut first = true;
    let mut member = |s: &mut String, key: &str, value: &str| {
        if !std::mem::take(&mut first) {
            s.push(',');
        }
        let _ = write!(s, r#""{key}":{value}"#);
    };
    match shape {
        Shape::Ordinary => {
            for k in 0..8 {
                member(&mut s, &format!("Key{k}"), &format!(r#""value-{k}""#));
            }
            member(&mut s, "Counter", if second { "2" } else { "1" });
        }
        Shape::Duplicates => {
            let n = bytes / 24;
            for i in 0..n {
                let v = if second && i % 2 == 1 {
                    format!(r#""w{i:07}""#)
                } else {
                    format!(r#""v{i:07}""#)
                };
                member(&mut s, "IVRStep", &v);
            }
        }
        Shape::Permuted => {
            let n = bytes / 30;
            // A fixed permutation: the index times a number prime to `n`, modulo `n`.
            let step = (1..)
                .map(|k| n / 2 + k)
                .find(|k| gcd(*k, n) == 1)
                .unwrap_or(1);
            for i in 0..n {
                let j = if second { (i * step) % n } else { i };
                member(&mut s, &format!("Key{j:08}"), &format!(r#""value{j:08}""#));
            }
        }
        Shape::DeepObjects | Shape::DeepLists => {
            let objects = shape == Shape::DeepObjects;
            // Members are level 2, so a chain of `DEPTH_LIMIT - 1` reaches the limit.
            let per = nested(DEPTH_LIMIT - 1, objects, "1").len() + 12;
            for i in 0..(bytes / per).max(1) {
                let inner = if second && i % 2 == 1 { "2" } else { "1" };
                member(
                    &mut s,
                    &format!("D{i:07}"),
                    &nested(DEPTH_LIMIT - 1, objects, inner),
                );
            }
        }
        Shape::Escapes => {
            const PIECE: &str = r#"a\"b\\c\nd\u00e9\t/"#;
            let long = 100_000;
            for i in 0..(bytes / long).max(1) {
                let mut v = String::with_capacity(long + 8);
                v.push('"');
                while v.len() < long {
                    v.push_str(PIECE);
                }
                if second && i % 2 == 1 {
                    v.push('!');
                }
                v.push('"');
                member(&mut s, &format!("Transcript{i}"), &v);
            }
        }
        Shape::OverLimit => {
            let depth = bytes / 6;
            member(&mut s, "Deep", &nested(depth, true, "1"));
        }
    }
    s.push('}');
    s
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The fixture of `shape`, about `bytes` long: two notifications of one call (first the user
/// data, then its change), or for [`Shape::Ordinary`] ~1 KB notifications of 100 calls
/// adding up to `bytes`. [`Shape::OverLimit`] has one ordinary notification, then the deep
/// one (line 2).
pub fn fixture(shape: Shape, bytes: usize) -> Vec<u8> {
    let mut out = String::with_capacity(bytes + 1024);
    match shape {
        Shape::Ordinary => {
            let mut i = 0;
            while out.len() < bytes {
                let call = format!("call{:04}", i % 100);
                let ud = user_data(shape, 0, (i / 100) % 2 == 1);
                out.push_str(&notification(&call, "Established", &ud));
                out.push('\n');
                i += 1;
            }
        }
        Shape::OverLimit => {
            out.push_str(&notification("c1", "Established", r#"{"A":"1"}"#));
            out.push('\n');
            out.push_str(&notification(
                "c1",
                "Established",
                &user_data(shape, bytes, true),
            ));
            out.push('\n');
        }
        _ => {
            for second in [false, true] {
                let ud = user_data(shape, bytes / 2, second);
                out.push_str(&notification("c1", "Established", &ud));
                out.push('\n');
            }
        }
    }
    out.into_bytes()
}

/// A global allocator that counts, per thread, the bytes the thread holds and their peak
/// (memory freed on another thread than it was allocated on counts against the freeing
/// thread). Tests in one binary run on threads of their own, so one test's figure is not
/// swelled by another's. Declare it in the binary:
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: gws_cometd_test_support::adversarial::Counting = Counting;
/// ```
pub struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: a thread being torn down has no counters left; it is not counted.
    let _ = HELD.try_with(|held| {
        let now = held.get() + delta;
        held.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY: every method forwards to `System` with the caller's own arguments, so `System`'s
// guarantees are ours; the counting around it uses const-initialized thread-locals of
// `Cell<isize>`, which never allocate (no reentry into the allocator) and never unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received (see the impl's comment).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f` on this thread and returns its result and the most bytes it held at once
/// beyond what the thread held before (with [`Counting`] as the global allocator; 0
/// without).
pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = HELD.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, usize::try_from(peak - base).unwrap_or(0))
}
