//! The `sds` command.

fn main() {
    println!("sds: under construction");
}
