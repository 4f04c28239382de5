//! The `Simulate` and `Execute` backends of [`crate::Mode`]: a compiled model's
//! tensor-level graph compiled to TFHE once, then run with simulated noise or on ciphertexts.

use crate::{Backend, BackendError, Mode};
use veil_compiler::program::{compile, CompileConfig, Program, ProgramError};
use veil_ir::{Graph, Tensor};
use veil_runtime::{ClientKeys, ServerKeys};

fn err(e: impl std::fmt::Display) -> BackendError {
    BackendError(e.to_string())
}

/// Checks that the graph asked to run is the one this backend was compiled for.
fn check_graph(program: &Program, graph: &Graph) -> Result<(), BackendError> {
    if veil_ir::text::print(graph) != veil_ir::text::print(&program.source) {
        return Err(BackendError(
            "this backend was compiled for another program; build a backend per model".into(),
        ));
    }
    Ok(())
}

/// Runs the lowered program on clear values with bootstrap errors injected at their predicted
/// rate ([`Mode::Simulate`]).
pub struct SimulateBackend {
    /// The compiled program.
    pub program: Program,
    /// Seed of the error injection.
    pub seed: u64,
}

impl SimulateBackend {
    /// Compiles `graph` calibrated on `inputset`.
    pub fn new(
        graph: &Graph,
        inputset: &[Vec<Tensor<i64>>],
        config: &CompileConfig,
    ) -> Result<Self, ProgramError> {
        Ok(SimulateBackend {
            program: compile(graph, inputset, config)?,
            seed: 0,
        })
    }
}

impl Backend for SimulateBackend {
    fn mode(&self) -> Mode {
        Mode::Simulate
    }

    fn name(&self) -> &str {
        "simulation"
    }

    fn run(&self, graph: &Graph, inputs: &[Tensor<i64>]) -> Result<Vec<Tensor<i64>>, BackendError> {
        check_graph(&self.program, graph)?;
        self.program.simulate(inputs, self.seed).map_err(err)
    }
}

/// Encrypts, runs on ciphertexts with the server keys only, and decrypts ([`Mode::Execute`]).
pub struct ExecuteBackend {
    /// The compiled program.
    pub program: Program,
    /// The client's secret keys.
    pub client: ClientKeys,
    /// The server's evaluation keys.
    pub server: ServerKeys,
}

impl ExecuteBackend {
    /// Compiles `graph` calibrated on `inputset` and generates keys from `seed`.
    pub fn new(
        graph: &Graph,
        inputset: &[Vec<Tensor<i64>>],
        config: &CompileConfig,
        seed: u128,
    ) -> Result<Self, ProgramError> {
        let program = compile(graph, inputset, config)?;
        let (client, server) = program.keygen(seed)?;
        Ok(ExecuteBackend {
            program,
            client,
            server,
        })
    }
}

impl Backend for ExecuteBackend {
    fn mode(&self) -> Mode {
        Mode::Execute
    }

    fn name(&self) -> &str {
        "tfhe"
    }

    fn run(&self, graph: &Graph, inputs: &[Tensor<i64>]) -> Result<Vec<Tensor<i64>>, BackendError> {
        check_graph(&self.program, graph)?;
        // FHE must equal the quantized model in the clear: refuse what the compiled program
        // would compute differently
        self.program
            .check_domain(inputs, veil_compiler::program::DomainCheck::Exact)
            .map_err(err)?;
        let ct = self
            .program
            .encrypt_unchecked(&self.client, inputs)
            .map_err(err)?;
        let out = self.program.run(&self.server, ct).map_err(err)?;
        self.program.decrypt(&self.client, &out).map_err(err)
    }
}
