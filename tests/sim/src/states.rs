//! FreeSWITCH's channel state, call state and direction enums, with the
//! names and numbers that appear in events.

/// `switch_channel_state_t`, with FreeSWITCH's names and numbers. Every
/// variant is kept (even unused ones) because the numbering depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, dead_code)]
pub enum CsState {
    New,
    Init,
    Routing,
    SoftExecute,
    Execute,
    ExchangeMedia,
    Park,
    ConsumeMedia,
    Hibernate,
    Reset,
    Hangup,
    Reporting,
    Destroy,
    None,
}

impl CsState {
    /// `CS_*` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::New => "CS_NEW",
            Self::Init => "CS_INIT",
            Self::Routing => "CS_ROUTING",
            Self::SoftExecute => "CS_SOFT_EXECUTE",
            Self::Execute => "CS_EXECUTE",
            Self::ExchangeMedia => "CS_EXCHANGE_MEDIA",
            Self::Park => "CS_PARK",
            Self::ConsumeMedia => "CS_CONSUME_MEDIA",
            Self::Hibernate => "CS_HIBERNATE",
            Self::Reset => "CS_RESET",
            Self::Hangup => "CS_HANGUP",
            Self::Reporting => "CS_REPORTING",
            Self::Destroy => "CS_DESTROY",
            Self::None => "CS_NONE",
        }
    }

    /// Enum value, as in `Channel-State-Number`.
    pub fn number(self) -> u8 {
        self as u8
    }
}

/// `switch_channel_callstate_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CallState {
    Down,
    Dialing,
    Ringing,
    Early,
    Active,
    Held,
    RingWait,
    Hangup,
    Unheld,
}

impl CallState {
    /// Name as in `Channel-Call-State` and `show channels` `callstate`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Down => "DOWN",
            Self::Dialing => "DIALING",
            Self::Ringing => "RINGING",
            Self::Early => "EARLY",
            Self::Active => "ACTIVE",
            Self::Held => "HELD",
            Self::RingWait => "RING_WAIT",
            Self::Hangup => "HANGUP",
            Self::Unheld => "UNHELD",
        }
    }

    /// Enum value, as in `Channel-Call-State-Number`.
    pub fn number(self) -> u8 {
        self as u8
    }
}

/// Call direction of a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From a phone to the box.
    Inbound,
    /// From the box to a phone.
    Outbound,
}

impl Direction {
    /// `inbound` / `outbound`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_freeswitch() {
        assert_eq!(CsState::Routing.number(), 2);
        assert_eq!(CsState::Reporting.number(), 11);
        assert_eq!(CsState::None.number(), 13);
        assert_eq!(CallState::Unheld.number(), 8);
        assert_eq!(CallState::Hangup.number(), 7);
    }
}
