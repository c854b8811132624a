//! GWS error notifications: [`ErrorMessage`], how a voice operation that failed is reported.

use super::record::{record, typed_serde, RawJson, Typed};

record! {
    /// `messageType: "ErrorMessage"`: a voice operation failed.
    pub struct ErrorMessage {
        /// `errorMessage`.
        error_message: Option<String> = "errorMessage",
        /// `errorCode`, as received (a number or a string).
        error_code: Option<RawJson> = "errorCode",
    }
}

impl Typed for ErrorMessage {
    const MESSAGE_TYPE: &'static str = "ErrorMessage";
}
typed_serde!(ErrorMessage);
