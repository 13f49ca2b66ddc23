//! Errors: the API errors a request can end in (rendered as `Status` objects) and start-up errors.

use serde_json::{Value, json};

/// One field-level cause of an `Invalid` (422) or `Conflict` (409) error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldManagerConflict`, ...
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// The field path (`spec.replicas`), as the API server writes it.
    pub field: String,
}

/// An error answered to the client as a `Status` object with the real code and reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    NotFound {
        message: String,
        group: String,
        kind: String,
        name: String,
    },
    #[error("{message}")]
    AlreadyExists {
        message: String,
        group: String,
        kind: String,
        name: String,
    },
    #[error("{message}")]
    Conflict {
        message: String,
        group: String,
        kind: String,
        name: String,
        causes: Vec<Cause>,
    },
    #[error("{message}")]
    Invalid {
        message: String,
        group: String,
        kind: String,
        name: String,
        causes: Vec<Cause>,
    },
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{message}")]
    Forbidden {
        message: String,
        group: String,
        kind: String,
        name: String,
        causes: Vec<Cause>,
    },
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{message}")]
    MethodNotAllowed { message: String },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("resource expired: {message}")]
    Gone { message: String },
    /// 503 from the service proxy: the Service has no endpoint that answers.
    #[error("{message}")]
    ServiceUnavailable { message: String },
    /// A status injected by a fault rule; `reason` follows the code.
    #[error("{message}")]
    Injected { code: u16, message: String },
}

impl ApiError {
    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::AlreadyExists { .. } | Self::Conflict { .. } => 409,
            Self::Invalid { .. } => 422,
            Self::BadRequest { .. } => 400,
            Self::Forbidden { .. } => 403,
            Self::Unauthorized => 401,
            Self::MethodNotAllowed { .. } => 405,
            Self::UnsupportedMediaType { .. } => 415,
            Self::Gone { .. } => 410,
            Self::ServiceUnavailable { .. } => 503,
            Self::Injected { code, .. } => *code,
        }
    }

    /// The `Status.reason`, matching `metav1.StatusReason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::Invalid { .. } => "Invalid",
            Self::BadRequest { .. } => "BadRequest",
            Self::Forbidden { .. } => "Forbidden",
            Self::Unauthorized => "Unauthorized",
            Self::MethodNotAllowed { .. } => "MethodNotAllowed",
            Self::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            Self::Gone { .. } => "Expired",
            Self::ServiceUnavailable { .. } => "ServiceUnavailable",
            Self::Injected { code, .. } => reason_for_code(*code),
        }
    }

    /// `404 <resource> "<name>" not found`, worded like the API server.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::NotFound {
            message: format!("{} \"{name}\" not found", qualified(resource, group)),
            group: group.to_owned(),
            kind: resource.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The 404 for a path the server does not serve.
    pub fn no_route() -> Self {
        Self::NotFound {
            message: "the server could not find the requested resource".to_owned(),
            group: String::new(),
            kind: String::new(),
            name: String::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
        }
    }

    /// 422 with field causes; `kind` is the object's Kind.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        Self::Invalid {
            message: format!("{} \"{name}\" is invalid: {joined}", qualified(kind, group)),
            group: group.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            causes,
        }
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut details = serde_json::Map::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                details.insert(k.to_owned(), Value::String(v.to_owned()));
            }
        };
        let mut causes_out: Option<&Vec<Cause>> = None;
        match self {
            Self::NotFound {
                group, kind, name, ..
            }
            | Self::AlreadyExists {
                group, kind, name, ..
            } => {
                put("name", name);
                put("group", group);
                put("kind", kind);
            }
            Self::Conflict {
                group,
                kind,
                name,
                causes,
                ..
            }
            | Self::Forbidden {
                group,
                kind,
                name,
                causes,
                ..
            }
            | Self::Invalid {
                group,
                kind,
                name,
                causes,
                ..
            } => {
                put("name", name);
                put("group", group);
                put("kind", kind);
                causes_out = Some(causes);
            }
            _ => {}
        }
        if let Some(causes) = causes_out.filter(|c| !c.is_empty()) {
            details.insert(
                "causes".to_owned(),
                causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect(),
            );
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// `resource.group`, or just `resource` for the core group.
pub fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

/// The `metav1.StatusReason` the API server uses for a code.
pub fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        504 => "Timeout",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    }
}

/// Why a test server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the server's runtime thread")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up TLS")]
    Tls {
        #[source]
        source: crate::tls::TlsError,
    },
    #[error("cannot write the kubeconfig {path}")]
    Kubeconfig {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
