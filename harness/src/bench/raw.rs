//! Raw nonblocking MPI point-to-point calls on byte buffers, for the two places that need
//! requests rsmpi's scoped API cannot hold across the work they overlap (the halo
//! exchange's phases, the HPL-MxP panel broadcasts). Every `unsafe` call is here, each with
//! its reason; callers keep the buffers alive and unmoved until their requests complete
//! (they own both, and wait in `Drop`), and hold a borrow of the communicator for as long
//! as they hold its handle.
//!
//! Message lengths are checked against MPI's `int` count before MPI starts
//! (`stencil::check`, `hpl::check`), so [`count`] cannot fail on a checked run.

use mpi::ffi;
use std::os::raw::c_int;

/// The largest message an MPI `int` count of bytes can describe.
pub const MAX_MESSAGE: usize = c_int::MAX as usize;

/// A request that refers to nothing (MPI_REQUEST_NULL).
pub fn null_request() -> ffi::MPI_Request {
    // SAFETY: reads an immutable handle constant that rsmpi's shim initialises.
    unsafe { ffi::RSMPI_REQUEST_NULL }
}

/// An MPI call's return code: anything but MPI_SUCCESS is a bug or a broken job (MPI's
/// default handler aborts before returning one), so it panics with the call's name, and the
/// panic hook aborts the job with the rank.
fn check(code: c_int, what: &str) {
    assert_eq!(code, ffi::MPI_SUCCESS as c_int, "{what} failed with MPI error {code}");
}

/// A byte or request count as MPI's `int`.
pub fn count(len: usize) -> c_int {
    c_int::try_from(len).expect("message lengths are checked against MAX_MESSAGE before MPI starts")
}

/// Posts a receive of `buf.len()` bytes from `peer` with `tag`.
pub fn irecv(buf: &mut [u8], peer: c_int, tag: c_int, comm: ffi::MPI_Comm) -> ffi::MPI_Request {
    let mut req = null_request();
    // SAFETY: `buf` is valid for writes of its length; the caller keeps it alive and unmoved
    // until the request completes, and `comm` is a live communicator it borrows.
    check(unsafe { ffi::MPI_Irecv(buf.as_mut_ptr().cast(), count(buf.len()), ffi::RSMPI_UINT8_T, peer, tag, comm, &mut req) }, "MPI_Irecv");
    req
}

/// Posts a send of `buf` to `peer` with `tag`.
pub fn isend(buf: &[u8], peer: c_int, tag: c_int, comm: ffi::MPI_Comm) -> ffi::MPI_Request {
    let mut req = null_request();
    // SAFETY: `buf` is valid for reads of its length and is not written while the request
    // is in flight (the caller owns it and completes the request first).
    check(unsafe { ffi::MPI_Isend(buf.as_ptr().cast(), count(buf.len()), ffi::RSMPI_UINT8_T, peer, tag, comm, &mut req) }, "MPI_Isend");
    req
}

/// Starts MPI_Ibcast of `buf` from `root`.
pub fn ibcast(buf: &mut [u8], root: c_int, comm: ffi::MPI_Comm) -> ffi::MPI_Request {
    let mut req = null_request();
    // SAFETY: as for `irecv`: the buffer outlives the request, the communicator is live.
    check(unsafe { ffi::MPI_Ibcast(buf.as_mut_ptr().cast(), count(buf.len()), ffi::RSMPI_UINT8_T, root, comm, &mut req) }, "MPI_Ibcast");
    req
}

/// True when `req` has completed (it is then MPI_REQUEST_NULL).
pub fn test(req: &mut ffi::MPI_Request) -> bool {
    let mut flag: c_int = 0;
    // SAFETY: `req` is a request this process posted (or null); status is ignored.
    check(unsafe { ffi::MPI_Test(req, &mut flag, ffi::RSMPI_STATUS_IGNORE) }, "MPI_Test");
    flag != 0
}

/// Waits for `req` (a null request returns at once).
pub fn wait(req: &mut ffi::MPI_Request) {
    // SAFETY: as for `test`.
    check(unsafe { ffi::MPI_Wait(req, ffi::RSMPI_STATUS_IGNORE) }, "MPI_Wait");
}

/// True when every request of `reqs` has completed; lets MPI progress them either way.
pub fn test_all(reqs: &mut [ffi::MPI_Request]) -> bool {
    let mut flag: c_int = 0;
    // SAFETY: `reqs` holds requests this process posted; statuses are ignored.
    check(unsafe { ffi::MPI_Testall(count(reqs.len()), reqs.as_mut_ptr(), &mut flag, ffi::RSMPI_STATUSES_IGNORE) }, "MPI_Testall");
    flag != 0
}

/// Waits for every request of `reqs`, then forgets them.
pub fn wait_all(reqs: &mut Vec<ffi::MPI_Request>) {
    if reqs.is_empty() {
        return;
    }
    // SAFETY: as for `test_all`.
    check(unsafe { ffi::MPI_Waitall(count(reqs.len()), reqs.as_mut_ptr(), ffi::RSMPI_STATUSES_IGNORE) }, "MPI_Waitall");
    reqs.clear();
}
