//! The optional features at their seams: `cfg_tls!` and `cfg_redis!` gate whole items
//! (a module, an `impl` block, a re-export) on a cargo feature and mark them with it in
//! the documentation, so that a gated item says which feature it needs on docs.rs.

/// Items that exist with the `tls` feature only.
macro_rules! cfg_tls {
    ($($item:item)*) => {
        $(
            #[cfg(feature = "tls")]
            #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
            $item
        )*
    };
}

/// Items that exist with the `redis` feature only.
macro_rules! cfg_redis {
    ($($item:item)*) => {
        $(
            #[cfg(feature = "redis")]
            #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
            $item
        )*
    };
}
