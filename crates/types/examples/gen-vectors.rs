//! Prints the test vectors: `cargo run -p preconfirmation-types --example gen-vectors > testdata/vectors.json`.
#[path = "../tests/common/vector_gen.rs"]
#[allow(dead_code, unreachable_pub)]
mod vector_gen;

fn main() {
    print!("{}", vector_gen::generate_json());
}
