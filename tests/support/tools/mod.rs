pub mod builds;
pub mod local_lambda;
pub mod runc;
pub mod table;
