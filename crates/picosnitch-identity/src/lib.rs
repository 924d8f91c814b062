//! Executable identity for picosnitch: open the file the kernel reported and check it is
//! the same one, hash it in a separate process that only ever sees file descriptors, and
//! cache hashes by (device, inode, size, mtime).
pub mod cache;
pub mod exe;
pub mod fdpass;
pub mod hash;
pub mod hasher_role;
pub mod procfs;
