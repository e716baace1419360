//! T_req, T_resp and response groups, per dialect.
