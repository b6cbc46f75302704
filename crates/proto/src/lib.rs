//! Generated code for every work4life protobuf contract (`proto/`), and the encoded descriptor
//! set that each server hands to gRPC reflection. Nothing here is written by hand except the
//! module tree, which mirrors the proto packages.

#![allow(clippy::all, missing_docs, rustdoc::all)]

/// The `FileDescriptorSet` of every contract, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/work4life_descriptor.bin"));

/// Google API annotations (field behavior, resources) used by our contracts.
pub mod google {
    pub mod api {
        include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
    }
}

/// `work4life.*` packages.
pub mod work4life {
    /// Shared value types (`work4life.type.v1`).
    pub mod r#type {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/work4life.r#type.v1.rs"));
        }
    }
    /// The event envelope (`work4life.events.v1`).
    pub mod events {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/work4life.events.v1.rs"));
        }
    }
    /// Identity: login, tokens, the published key set (`work4life.identity.v1`).
    pub mod identity {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/work4life.identity.v1.rs"));
        }
    }
    /// Intake: programs, the person registry, calls, applications, review (`work4life.intake.v1`).
    pub mod intake {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/work4life.intake.v1.rs"));
        }
    }
    /// Coaching: offices, coaches, engagements, sessions, milestones (`work4life.coaching.v1`).
    pub mod coaching {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/work4life.coaching.v1.rs"));
        }
    }
    /// Grants: budgets, awards, disbursements, payment batches, the ledger, reports (`work4life.grants.v1`).
    pub mod grants {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/work4life.grants.v1.rs"));
        }
    }
    /// Notifications: templates, preferences, messages and their course, the inbox (`work4life.notifications.v1`).
    pub mod notifications {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/work4life.notifications.v1.rs"));
        }
    }
    /// The echo service for tests and benchmarks (`work4life.testing.v1`).
    pub mod testing {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/work4life.testing.v1.rs"));
        }
    }
}

pub use work4life::{
    coaching::v1 as coaching, events::v1 as events, grants::v1 as grants, identity::v1 as identity, intake::v1 as intake,
    notifications::v1 as notifications, testing::v1 as testing, r#type::v1 as types,
};
