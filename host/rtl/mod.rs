//! The RTL half: the Verilated IOMMU + ATS link + ATS device
//! (`rtl/shootdown_top.sv`) behind a safe [`Model`], and the encodings of
//! its socket (docs/socket.md).

mod cover;
mod ffi;
mod model;
mod ports;

pub use cover::{cover_points, CoverPoint};
pub use model::{assertion_name, idle_skip_available, Model, RtlError};
pub use ports::{
    ats_inval_range, cmd_ats_inval, cmd_ats_inval_no_pasid, cmd_ats_prgr, cmd_iofence_c,
    cmd_iotinval_range, cmd_iotinval_vma, decode_command, decode_page_request, decode_probe,
    inject_bits, iotinval_range, page_request_record, Command, Inject, PageRequest, PortsIn,
    PortsOut, ProbeEntry, ProbeIn, ProbeOut, ATS_S, CMD_AV, CMD_BYTES, CMD_DATA_SHIFT,
    CMD_FUNC3_SHIFT, CMD_PASID_SHIFT, CMD_PV, CQ_ERR_CMD_TO, CQ_ERR_ILL, FUNC3_ATS_PRGR,
    INJECT_NAMES, NUM_PROBES, OP_ATS, OP_IOFENCE, OP_IOTINVAL, PASID_MASK, PQ_L, PQ_PV, PQ_R,
    PQ_RECORD_BYTES, PQ_W, PRGR_CODE_SHIFT, PRG_FAILURE, PRG_INVALID, PRG_SUCCESS,
};
