//! placeholder
mod herald_world;
