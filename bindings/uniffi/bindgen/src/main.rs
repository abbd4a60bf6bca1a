//! `uniffi-bindgen`, built from the same `uniffi` release as `ipvtl-ffi`,
//! so generated bindings always match the scaffolding in the library:
//!
//! ```text
//! cargo run -p ipvtl-uniffi-bindgen -- generate --library target/debug/libipvtl_ffi.so \
//!     --language kotlin --out-dir out/
//! ```

fn main() {
    uniffi::uniffi_bindgen_main()
}
