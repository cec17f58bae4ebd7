//! The two libvirt launch-security calls the `virt` crate has no safe
//! wrapper for, through `virt-sys` (behind the `libvirt` feature).
//!
//! Typed parameters are owned by a guard that frees them with
//! `virTypedParamsFree` on every path, including early returns.

use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::ptr;

use virt::domain::Domain;
use virt::error::Error as VirtError;
use virt_sys as sys;

/// Typed parameters allocated by libvirt, freed on drop.
struct TypedParams {
    ptr: sys::virTypedParameterPtr,
    len: c_int,
    /// Capacity, for the virTypedParamsAdd* growth protocol.
    max: c_int,
}

impl TypedParams {
    fn empty() -> TypedParams {
        TypedParams {
            ptr: ptr::null_mut(),
            len: 0,
            max: 0,
        }
    }

    /// The parameters as a slice (empty when libvirt returned none).
    fn as_slice(&self) -> &[sys::virTypedParameter] {
        if self.ptr.is_null() || self.len <= 0 {
            return &[];
        }
        // SAFETY: libvirt returned `len` initialised parameters at `ptr`
        // (or built them through virTypedParamsAdd*), and they live until
        // virTypedParamsFree in Drop; the borrow cannot outlive self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len as usize) }
    }
}

impl Drop for TypedParams {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: ptr/len came from libvirt's allocators (GetLaunchSecurityInfo
            // or virTypedParamsAdd*) and are freed exactly once, here.
            unsafe { sys::virTypedParamsFree(self.ptr, self.len) };
        }
    }
}

/// One launch-security parameter as libvirt reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    Int(i64),
    UInt(u64),
    String(String),
    Other(i32),
}

/// `virDomainGetLaunchSecurityInfo`: every parameter, by name.
pub fn get_launch_security_info(dom: &Domain) -> Result<Vec<(String, ParamValue)>, VirtError> {
    let mut params = TypedParams::empty();
    // SAFETY: `dom` is a live domain; libvirt writes an allocated array and
    // its length into the two out-pointers, which `params` then owns.
    let rc = unsafe {
        sys::virDomainGetLaunchSecurityInfo(dom.as_ptr(), &mut params.ptr, &mut params.len, 0)
    };
    if rc < 0 {
        return Err(VirtError::last_error());
    }
    let mut out = Vec::new();
    for p in params.as_slice() {
        // `field` is a fixed array, so its bound is known: no pointer walk.
        let field: Vec<u8> = p.field.iter().map(|&c| c as u8).collect();
        let name = CStr::from_bytes_until_nul(&field)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(&field).into_owned());
        // SAFETY: the union member read is the one `type_` says is valid;
        // string values are NUL-terminated and owned by `params`.
        let value = unsafe {
            match p.type_ as u32 {
                sys::VIR_TYPED_PARAM_INT => ParamValue::Int(i64::from(p.value.i)),
                sys::VIR_TYPED_PARAM_UINT => ParamValue::UInt(u64::from(p.value.ui)),
                sys::VIR_TYPED_PARAM_LLONG => ParamValue::Int(p.value.l),
                sys::VIR_TYPED_PARAM_ULLONG => ParamValue::UInt(p.value.ul),
                sys::VIR_TYPED_PARAM_STRING if !p.value.s.is_null() => {
                    ParamValue::String(CStr::from_ptr(p.value.s).to_string_lossy().into_owned())
                }
                t => ParamValue::Other(t as i32),
            }
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Why a secret could not be set.
#[derive(Debug)]
pub enum SetSecretError {
    /// libvirt refused it.
    Libvirt(VirtError),
    /// The named parameter held a NUL byte, which a C string cannot carry.
    Nul(&'static str),
}

/// `virDomainSetLaunchSecurityState` with `sev-secret-header`, `sev-secret`
/// and, when given, `sev-secret-set-address`.
pub fn set_launch_secret(
    dom: &Domain,
    header_b64: &str,
    secret_b64: &str,
    gpa: Option<u64>,
) -> Result<(), SetSecretError> {
    let mut params = TypedParams::empty();
    // Base64 never contains NUL; if it somehow did, refuse rather than send
    // a shortened or empty packet.
    let header = CString::new(header_b64).map_err(|_| SetSecretError::Nul("sev-secret-header"))?;
    let secret = CString::new(secret_b64).map_err(|_| SetSecretError::Nul("sev-secret"))?;
    for (name, value) in [
        (sys::VIR_DOMAIN_LAUNCH_SECURITY_SEV_SECRET_HEADER, &header),
        (sys::VIR_DOMAIN_LAUNCH_SECURITY_SEV_SECRET, &secret),
    ] {
        // SAFETY: the out-pointers belong to `params`; name and value are
        // NUL-terminated and libvirt copies the value.
        let rc = unsafe {
            sys::virTypedParamsAddString(
                &mut params.ptr,
                &mut params.len,
                &mut params.max,
                name.as_ptr(),
                value.as_ptr(),
            )
        };
        if rc < 0 {
            return Err(SetSecretError::Libvirt(VirtError::last_error()));
        }
    }
    if let Some(gpa) = gpa {
        // SAFETY: as above.
        let rc = unsafe {
            sys::virTypedParamsAddULLong(
                &mut params.ptr,
                &mut params.len,
                &mut params.max,
                sys::VIR_DOMAIN_LAUNCH_SECURITY_SEV_SECRET_SET_ADDRESS.as_ptr(),
                gpa,
            )
        };
        if rc < 0 {
            return Err(SetSecretError::Libvirt(VirtError::last_error()));
        }
    }
    // SAFETY: `dom` is live; params/len describe the array built above,
    // which libvirt only reads.
    let rc =
        unsafe { sys::virDomainSetLaunchSecurityState(dom.as_ptr(), params.ptr, params.len, 0) };
    if rc < 0 {
        return Err(SetSecretError::Libvirt(VirtError::last_error()));
    }
    Ok(())
}
