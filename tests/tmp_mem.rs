use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
static LIVE: AtomicIsize = AtomicIsize::new(0);
struct C;
unsafe impl GlobalAlloc for C {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 { LIVE.fetch_add(l.size() as isize, Ordering::Relaxed); unsafe { System.alloc(l) } }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) { LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed); unsafe { System.dealloc(p, l) } }
}
#[global_allocator]
static A: C = C;
#[test]
fn mem() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut v = Vec::new();
        let b = LIVE.load(Ordering::Relaxed);
        for _ in 0..100 { v.push(reqwest::Client::builder().cookie_provider(std::sync::Arc::new(reqwest::cookie::Jar::default())).build().unwrap()); }
        eprintln!("reqwest client: {} B", (LIVE.load(Ordering::Relaxed) - b) / 100);
        let b = LIVE.load(Ordering::Relaxed);
        let mut w = Vec::new();
        for _ in 0..100 { w.push(gws_cometd::Client::builder("http://127.0.0.1:1/cometd").initial_handshake_attempts(None).build().unwrap()); }
        eprintln!("bayeux client (not connected): {} B", (LIVE.load(Ordering::Relaxed) - b) / 100);
        let b = LIVE.load(Ordering::Relaxed);
        let mut x = Vec::new();
        for _ in 0..100 { x.push(gws_cometd::gws::api::GwsSession::new("http://127.0.0.1:1", gws_cometd::gws::api::Credentials::new("a","b")).unwrap()); }
        eprintln!("gws session: {} B", (LIVE.load(Ordering::Relaxed) - b) / 100);
    });
}
