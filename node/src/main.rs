fn main() -> anyhow::Result<()> {
    anyhow::bail!("acp: the node is not built yet")
}
