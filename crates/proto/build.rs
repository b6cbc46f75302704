//! Compiles every `.proto` under `proto/` in pure Rust (protox, no protoc), writes the descriptor
//! set that server reflection serves, then generates messages, clients and servers.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../..");
    let proto_dir = root.join("proto");
    let vendor_dir = root.join("third_party/googleapis");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    println!("cargo:rerun-if-changed={}", vendor_dir.display());

    let mut files = Vec::new();
    collect_protos(&proto_dir, &mut files)?;
    files.sort();
    let fds = protox::compile(&files, [&proto_dir, &vendor_dir])?;

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("work4life_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;

    tonic_prost_build::configure().extern_path(".google.rpc", "::tonic_types::pb").compile_fds(fds)?;
    Ok(())
}

fn collect_protos(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
