//! Primary <-> virustotal: a sha256 to look up (with the executable's descriptor
//! attached when it may be uploaded), and the verdict back.
use picosnitch_store::Verdict;
use serde::{Deserialize, Serialize};

/// Zero descriptors, or one: the executable, opened by the primary, to upload if
/// VirusTotal does not know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VtRequest {
    pub sha256: String,
    /// The executable's path, for logs and the upload's file name.
    pub exe: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VtReply {
    pub sha256: String,
    pub exe: String,
    /// The verdict, or why there is none (the lookup may be asked again later).
    pub result: Result<Verdict, String>,
}
