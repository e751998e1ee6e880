//! What a wasm contract binary needs from its runtime: a global allocator and a panic handler
//! that ends the call with the panic message.

/// dlmalloc over the instance's linear memory (every call starts with a fresh instance).
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// Formats the panic message into a fixed buffer (allocation may be what failed) and aborts.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    struct Buf {
        bytes: [u8; 512],
        len: usize,
    }
    impl core::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let take = s.len().min(self.bytes.len() - self.len);
            self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
            self.len += take;
            Ok(())
        }
    }
    let mut buf = Buf {
        bytes: [0; 512],
        len: 0,
    };
    let _ = core::fmt::write(&mut buf, format_args!("panic: {}", info.message()));
    if let Some(loc) = info.location() {
        let _ = core::fmt::write(&mut buf, format_args!(" at {}:{}", loc.file(), loc.line()));
    }
    // Truncation may split a character: cut back to a boundary.
    let mut len = buf.len;
    while core::str::from_utf8(&buf.bytes[..len]).is_err() {
        len -= 1;
    }
    let msg = core::str::from_utf8(&buf.bytes[..len]).unwrap_or("panic");
    crate::env::abort(crate::ErrorKind::Failed, msg)
}
